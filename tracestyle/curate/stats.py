"""Dataset statistics per register: counts, kept/dropped by reason, token totals under a named tokenizer."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from tracestyle.curate.cost import usage_by_register
from tracestyle.distill.models import load_tokenizer
from tracestyle.jsonl import read_jsonl


def count_tokens_fn(tokenizer: str):
    if tokenizer == "whitespace":
        return lambda texts: [len(t.split()) for t in texts]

    tok = load_tokenizer(tokenizer)
    # an empty list is a register the filters emptied, not an error
    return lambda texts: [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]] if texts else []


def dataset_stats(path: str | Path, tokenizer: str = "smollm2-135m", prices: dict | None = None) -> dict:
    path = Path(path)
    if path.is_dir():
        kept_p, drop_p = path / "kept.jsonl", path / "dropped.jsonl"
        kept = read_jsonl(kept_p, allow_empty=True) if kept_p.exists() else read_jsonl(path / "traces.jsonl")
        dropped = read_jsonl(drop_p, allow_empty=True) if drop_p.exists() else []
    else:
        kept, dropped = read_jsonl(path, required=("text",)), []
    count = count_tokens_fn(tokenizer)
    per: dict = defaultdict(lambda: {"kept": 0, "dropped": 0, "reasons": Counter(), "tokens": 0, "problems": set()})
    for r, toks in zip(kept, count([r["text"] for r in kept])):
        s = per[r.get("register") or "-"]
        s["kept"] += 1
        s["tokens"] += toks
        s["problems"].add(r.get("problem_id"))
    for r in dropped:
        s = per[r.get("register") or "-"]
        s["dropped"] += 1
        reason = r.get("reason", "?")
        # a decontam drop names its n-gram; counted together
        s["reasons"]["decontam" if reason.startswith("decontam:") else reason] += 1
    out = {}
    for reg, s in sorted(per.items()):
        out[reg] = {"kept": s["kept"], "dropped": s["dropped"], "problems": len(s["problems"]),
                    "tokens": s["tokens"], "tokens_per_trace": round(s["tokens"] / s["kept"], 1) if s["kept"] else 0,
                    "drop_reasons": dict(s["reasons"].most_common())}
    teacher = usage_by_register(kept + dropped, prices)
    for reg, u in teacher.items():
        if reg in out:
            out[reg]["teacher_usage"] = u
    return {"path": str(path), "tokenizer": tokenizer, "registers": out}
