#!/usr/bin/env python
"""The arithmetic step checker on structured expressions and on GSM8K's own reference solutions: recall on planted
errors (found at their line), false alarms on the same traces without them, and the share of GSM8K references it
flags (those are the dataset's own wrong results: tests/test_steps.py checks they are the only ones). CPU only,
no model; ~1 min."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tracestyle.answers.arithmetic import check_steps  # noqa: E402
from tracestyle.tasks.gsm8k.source import load_gsm8k  # noqa: E402

from structured_steps import cases  # noqa: E402


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data/gsm8k"
    cs = cases(4000)
    planted = [(t, line) for t, line, p in cs if p]
    found = sum(not check_steps(t).valid and check_steps(t).first_error_line == line for t, line in planted)
    clean = [t for t, _, p in cs if not p]
    fa = sum(not check_steps(t).valid for t in clean)
    refs = [re.sub(r"<<[^>]*>>", "", p["solution"]) for p in load_gsm8k("train", data) + load_gsm8k("test", data)]
    checks = [check_steps(t) for t in refs]
    print(json.dumps({
        "structured_planted": len(planted), "structured_recall_at_line": round(found / len(planted), 4),
        "structured_clean": len(clean), "structured_false_alarm_rate": round(fa / len(clean), 4),
        "gsm8k_references": len(refs), "gsm8k_statements_checked": sum(c.checked for c in checks),
        "gsm8k_references_flagged": sum(not c.valid for c in checks),
        "gsm8k_flagged_rate": round(sum(not c.valid for c in checks) / len(refs), 4)}))


if __name__ == "__main__":
    main()
