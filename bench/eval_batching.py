"""Evaluation generation tokens/s on CPU: batched vs batch size 1, same problems and model. Prints JSON."""

from __future__ import annotations

import json
import sys

from tracestyle.distill.generation import generate_batch, load_for_generation
from tracestyle.tasks.kg.questions import generate_kg_problems


def main(n: int = 16, batch: int = 16, max_new: int = 64) -> None:
    qs = [p["question"] for p in generate_kg_problems("devops", "eval", n, 3)]
    model, tok = load_for_generation("smollm2-135m", None, "cpu")
    res = {}
    for bs in (1, batch):
        toks, secs = 0, 0.0
        for s in range(0, n, bs):
            g = generate_batch(model, tok, qs[s: s + bs], max_new)
            toks += sum(g["tokens"])
            secs += g["seconds"]
        res[f"bs{bs}_tokens_per_s"] = toks / secs
    res["ratio_eval_batched_vs_bs1"] = res[f"bs{batch}_tokens_per_s"] / res["bs1_tokens_per_s"]
    print(json.dumps(res))


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
