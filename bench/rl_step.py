#!/usr/bin/env python
"""GRPO rollout settings, measured: seconds per `tracestyle rl` step (TRL's GRPOTrainer, the bundled SmolLM2-135M,
1 problem x 8 completions x 64 new tokens, LoRA) at 1 thread and at every core, in float32 and, where the CPU has
native bf16, in bfloat16. run_rl uses 1 thread on a CPU by default; this says whether that is right here. Prints
JSON with the CPU and its bf16 flags; the ratio is 1 thread against every core.

Usage: bench/rl_step.py [steps]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    from tracestyle.distill.config import config_from_preset
    from tracestyle.jsonl import write_jsonl
    from tracestyle.precision import cpu_facts, native_bf16
    from tracestyle.rl.grpo import RLConfig, run_rl
    from tracestyle.tasks import get_task

    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    res: dict = {"cpu": cpu_facts(), "steps": steps}
    precisions = ["float32"] + (["bfloat16"] if native_bf16("cpu") else [])
    with tempfile.TemporaryDirectory() as tmp:
        probs = Path(tmp) / "train.jsonl"
        write_jsonl(probs, get_task("kg").load_problems(split="train", n=16, seed=0,
                                                        options={"kg": "devops", "train_hops": (1, 3)}))
        for prec in precisions:
            for n in sorted({1, os.cpu_count() or 1}):
                cfg = config_from_preset("smollm2-135m", dtype=prec, seed=0)
                t0 = time.time()
                run_rl(probs, cfg, Path(tmp) / f"{prec}-{n}", RLConfig(steps=steps, num_generations=8,
                                                                      max_new_tokens=64, threads=n, save_every=1000))
                rows = [json.loads(x) for x in (Path(tmp) / f"{prec}-{n}" / "metrics.jsonl").read_text().splitlines()]
                # the first step includes warm-up: steps after it, from the elapsed column
                per = (rows[-1]["elapsed"] - rows[0]["elapsed"]) / max(1, len(rows) - 1) if len(rows) > 1 else None
                res[f"{prec}_threads{n}_s_per_step"] = round(per, 2) if per else None
                res[f"{prec}_threads{n}_total_s"] = round(time.time() - t0, 1)
        for prec in precisions:
            a, b = res.get(f"{prec}_threads1_s_per_step"), res.get(f"{prec}_threads{os.cpu_count()}_s_per_step")
            if a and b and os.cpu_count() != 1:
                res[f"ratio.rl_step_1_thread_vs_all_{prec}"] = round(b / a, 2)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
