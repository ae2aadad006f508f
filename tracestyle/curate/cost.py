"""What a teacher run cost: prompt and completion tokens per register (as the server reported them), and an
estimate in money from a price table the user passes (per model, per million tokens):

    gpt-4o-mini: {input: 0.15, output: 0.60}
    Qwen/Qwen2.5-72B-Instruct: {input: 0.90, output: 0.90}
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from tracestyle.errors import InputError
from tracestyle.yamlfile import key_line, load_yaml


def load_prices(path: str | Path) -> dict[str, dict[str, float]]:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise InputError("expected a mapping model: {input: $/M tokens, output: $/M tokens}", str(path), 1)
    for model, p in data.items():
        if not isinstance(p, dict) or set(p) - {"input", "output"} or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in p.values()):
            raise InputError("expected {input: number, output: number} (dollars per million tokens)", str(path),
                             key_line(path, str(model)), str(model))
    return {str(m): {"input": float(p.get("input", 0)), "output": float(p.get("output", 0))} for m, p in data.items()}


def usage_by_register(rows: list[dict], prices: dict | None = None) -> dict[str, dict]:
    """Per register: rows with usage, prompt and completion tokens, and (with prices) the estimated cost."""
    out: dict = defaultdict(lambda: {"rows": 0, "prompt_tokens": 0.0, "completion_tokens": 0.0})
    unpriced = set()
    for r in rows:
        u = r.get("usage")
        if not isinstance(u, dict):
            continue
        s = out[r.get("register") or "-"]
        s["rows"] += 1
        s["prompt_tokens"] += float(u.get("prompt_tokens") or 0)
        s["completion_tokens"] += float(u.get("completion_tokens") or 0)
        if prices is not None:
            p = prices.get(str(r.get("teacher_model")))
            if p is None:
                unpriced.add(str(r.get("teacher_model")))
                continue
            s["cost_usd"] = s.get("cost_usd", 0.0) + (float(u.get("prompt_tokens") or 0) * p["input"] +
                                                      float(u.get("completion_tokens") or 0) * p["output"]) / 1e6
    res = {}
    for reg, s in sorted(out.items()):
        res[reg] = {**s, "prompt_tokens": int(round(s["prompt_tokens"])),
                    "completion_tokens": int(round(s["completion_tokens"]))}
        if "cost_usd" in s:
            res[reg]["cost_usd"] = round(s["cost_usd"], 6)
    if unpriced:
        for v in res.values():
            v["unpriced_models"] = sorted(unpriced)
    return res
