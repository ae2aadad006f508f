"""Evaluation generation tokens/s on CPU, same prompts and model, greedy. The peer is plain transformers
`generate` at batch 1; ours is the evaluation path (`tracestyle eval`'s default on a CPU: CTranslate2 over the merged
float32 weights, batched); transformers batched is shown too. Reports the share of prompts whose output is
token-identical to the peer's. Prints JSON.

Usage: bench/eval_batching.py [N_PROMPTS=64] [BATCH=32] [MAX_NEW=64] [STUDENT=smollm2-135m]
"""

from __future__ import annotations

import json
import sys
import time

from tracestyle.distill.engine_ct2 import CT2Generator
from tracestyle.distill.generation import Decoding, generate_batch, load_for_generation
from tracestyle.tasks.kg.questions import generate_kg_problems


def main(n: int = 64, batch: int = 32, max_new: int = 64, student: str = "smollm2-135m") -> None:
    import torch

    torch.set_num_threads(2)
    qs = [p["question"] for p in generate_kg_problems("devops", "eval", n, 3)]
    fmt = "plain" if student.startswith("gemma") else "chat"
    model, tok = load_for_generation(student, None, "cpu")
    res: dict = {"prompts": n, "max_new_tokens": max_new, "student": student}
    outs = {}

    def run(name, fn, bs):
        toks, t0, texts = 0, time.perf_counter(), []
        for s in range(0, n, bs):
            g = fn(qs[s: s + bs])
            toks += sum(g["tokens"])
            texts += g["texts"]
        secs = time.perf_counter() - t0
        res[f"{name}_tokens_per_s"] = toks / secs
        res[f"{name}_seconds"] = secs
        outs[name] = texts

    dec = Decoding(max_new, fmt=fmt)
    run("hf_bs1", lambda b: generate_batch(model, tok, b, dec), 1)
    run(f"hf_bs{batch}", lambda b: generate_batch(model, tok, b, dec), batch)
    t0 = time.perf_counter()
    engine = CT2Generator(student, None)   # converts once (cached); the conversion time is reported apart
    res["ct2_load_seconds"] = time.perf_counter() - t0
    # loop stopping off: the same work as the peer, so tokens/s and outputs compare one to one
    run("ours_ct2", lambda b: engine.generate(b, dec, batch_size=batch, stop_loops=False), n)
    for name in (f"hf_bs{batch}", "ours_ct2"):
        res[f"{name}_identical_to_bs1"] = sum(a == b for a, b in zip(outs[name], outs["hf_bs1"])) / n
    res["ratio_eval_batched_vs_bs1"] = res["ours_ct2_tokens_per_s"] / res["hf_bs1_tokens_per_s"]
    res["ratio_hf_batched_vs_bs1"] = res[f"hf_bs{batch}_tokens_per_s"] / res["hf_bs1_tokens_per_s"]
    diffs = [(a, b) for a, b in zip(outs["ours_ct2"], outs["hf_bs1"]) if a != b][:3]
    res["first_differences"] = [{"ours": a[:200], "peer": b[:200]} for a, b in diffs]
    print(json.dumps(res))


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*[int(a) for a in args[:3]], *args[3:4])
