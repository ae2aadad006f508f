"""Filter throughput and agreement: our extraction + compliance + kg_path over N traces, and lm-evaluation-harness's
GSM8K strict/flexible regex filters (patterns as in lm_eval/tasks/gsm8k) on the same GSM8K traces. Prints JSON."""

from __future__ import annotations

import json
import re
import sys
import time

from tracestyle.answers.numbers import numbers_equal, parse_number
from tracestyle.curate.compliance import check_compliance
from tracestyle.curate.teachers.template import template_trace
from tracestyle.prompts import load_registers
from tracestyle.tasks import score
from tracestyle.tasks.gsm8k.source import load_gsm8k
from tracestyle.tasks.kg.questions import generate_kg_problems

STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


def lm_eval_extract(text: str, strict: bool) -> str | None:
    if strict:
        m = STRICT.findall(text)
        return m[0] if m else None
    m = FLEXIBLE.findall(text)
    if not m:
        return None
    last = m[-1]
    return last[0] or last[1]


def main(n_total: int) -> None:
    regs = load_registers()
    gsm = load_gsm8k("test")
    kgp = generate_kg_problems("devops", "train", 500, 0)
    base = [(p, r, template_trace(p, regs[r])) for p in gsm for r in regs] + \
           [(p, r, template_trace(p, regs[r])) for p in kgp for r in regs]
    reps = max(1, n_total // len(base))
    items = base * reps
    t0 = time.perf_counter()
    kept = 0
    for p, r, t in items:
        s = score(p, t)   # the answer and, for KG rows, the path: what the correct and kg_path filters run
        kept += s["correct"] and s.get("path_valid", True) and check_compliance(t, regs[r].compliance).ok
    ours_s = time.perf_counter() - t0
    gsm_items = [(p, t) for p, r, t in base if p["task"] == "gsm8k"]
    out = {"traces": len(items), "ours_traces_per_s": len(items) / ours_s, "ours_kept": kept}
    # agreement with gold on the same GSM8K traces, all four registers
    for name, fn in (("ours", lambda t: score({"task": "gsm8k", "gold": "0"}, t)["extracted"]),
                     ("lm_eval_strict", lambda t: lm_eval_extract(t, True)),
                     ("lm_eval_flexible", lambda t: lm_eval_extract(t, False))):
        t0 = time.perf_counter()
        got = [fn(t) for _, t in gsm_items * 20]
        secs = time.perf_counter() - t0
        agree = sum(numbers_equal(parse_number(g) if g else None, parse_number(p["gold"]))
                    for (p, _), g in zip(gsm_items, got))
        out[f"{name}_extract_per_s"] = len(got) / secs
        out[f"{name}_agreement"] = agree / len(gsm_items)
    print(json.dumps(out))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
