"""The step checker on traces a real model wrote: GSM8K test problems, normal and diamond registers, written by the
bundled SmolLM2-135M behind the local llama.cpp server through our teacher client. Reports how many statements
were checked, how many traces were flagged, every flag (for reading by hand: precision), and recall on errors
planted into statements the model got right (one result changed per trace, as corrupt.py does). Prints JSON;
writes the flags to bench/steps_flags.jsonl.

  .venv/bin/python bench/steps_checker.py [N_PROBLEMS]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import free_port, start_llama_server


def main(n: int) -> None:
    from tracestyle.answers.arithmetic import check_steps
    from tracestyle.curate.corrupt import corrupt_row
    from tracestyle.curate.generate import Teacher, generate
    from tracestyle.curate.teachers.openai_client import OpenAIConfig
    from tracestyle.prompts import load_registers
    from tracestyle.tasks.gsm8k.source import load_gsm8k

    proc, base = start_llama_server(free_port(), timeout=240)
    try:
        problems = load_gsm8k("test", None, n)
        regs = load_registers(["normal", "diamond"])
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.time()
            generate(problems, regs, tmp, Teacher("openai", OpenAIConfig(base_url=base, model="smollm2", max_tokens=256,
                                                                         temperature=0.7, concurrency=4)),
                     quiet=True)
            secs = time.time() - t0
            rows = [json.loads(x) for x in (Path(tmp) / "traces.jsonl").read_text().splitlines()]
    finally:
        proc.terminate()
    flags, checked, flagged, planted, found = [], 0, 0, 0, 0
    for r in rows:
        c = check_steps(r["text"])
        checked += c.checked
        flagged += not c.valid
        for e in c.errors:
            flags.append({"problem_id": r["problem_id"], "register": r["register"], "line": e.line,
                          "statement": e.statement, "stated": e.stated, "computed": e.computed,
                          "text_line": r["text"].split("\n")[e.line][:300]})
        if c.valid and c.checked:
            bad = corrupt_row(r, "wrong_value", 0)
            if bad is not None:
                planted += 1
                cb = check_steps(bad["text"])
                found += (not cb.valid) and cb.first_error_line == bad["corruption"]["line"]
    Path(__file__).with_name("steps_flags.jsonl").write_text("".join(json.dumps(f) + "\n" for f in flags))
    print(json.dumps({"traces": len(rows), "generation_seconds": round(secs, 1), "statements_checked": checked,
                      "traces_with_statements": sum(1 for r in rows if check_steps(r["text"]).checked),
                      "traces_flagged": flagged, "flags": len(flags), "planted": planted,
                      "planted_found_at_their_line": found,
                      "recall_planted": round(found / planted, 3) if planted else None}, indent=2))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
