"""Evaluation generation tokens/s on this CPU, same prompts and model, greedy, for each engine x precision. The
peer is plain transformers `generate`, float32, one prompt at a time; ours are the evaluation engines `tracestyle
eval` can run (transformers with finished rows dropped, float32 and bfloat16; CTranslate2, float32; vLLM's CPU build
where installed, both precisions, its start counted apart and included). Reports each
one's share of outputs token-identical to the peer's, and which engine and precision `--backend auto` picks here.
Prints the CPU and its bf16 flags with the figures, as JSON.

Usage: bench/eval_batching.py [N_PROMPTS=64] [BATCH=the evaluation default, 64] [MAX_NEW=64] [STUDENT=smollm2-135m]
"""

from __future__ import annotations

import json
import sys
import time

from tracestyle.distill import engine_ct2
from tracestyle.distill.config import EVAL_BATCH
from tracestyle.distill.engine_choice import choose
from tracestyle.distill.eval_vllm import VLLMGenerator, vllm_available
from tracestyle.distill.examples import build_prompt, end_text
from tracestyle.distill.generation import Decoding, finish_row, generate_batch, load_for_generation
from tracestyle.precision import cpu_facts, resolve_precision
from tracestyle.tasks.kg.questions import generate_kg_problems


def peer_generate(model, tok, q: str, max_new: int, fmt: str) -> tuple[str, int]:
    import torch

    stop = [i for i in {tok.eos_token_id, tok.convert_tokens_to_ids(end_text(tok, fmt)) if end_text(tok, fmt)
                        else None} if isinstance(i, int) and i >= 0]
    enc = tok([build_prompt(tok, q, fmt)], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, eos_token_id=stop,
                             pad_token_id=tok.pad_token_id)
    ids = out[0, enc["input_ids"].shape[1]:].tolist()
    cut = next((k for k, t in enumerate(ids) if t in stop), len(ids))
    return finish_row(tok, ids[:cut], stopped=cut < len(ids), fmt=fmt, at_limit=cut >= max_new)[0], len(ids)


def main(n: int = 64, batch: int = EVAL_BATCH, max_new: int = 64, student: str = "smollm2-135m") -> None:
    import torch

    torch.set_num_threads(2)
    qs = [p["question"] for p in generate_kg_problems("devops", "eval", n, 3)]
    fmt = "plain" if student.startswith("gemma") else "chat"
    res: dict = {"cpu": cpu_facts(), "torch_threads": torch.get_num_threads(), "prompts": n, "batch": batch,
                 "max_new_tokens": max_new, "student": student}
    model, tok = load_for_generation(student, None, "cpu", "float32")
    t0, toks, peer = time.perf_counter(), 0, []
    for q in qs:
        text, k = peer_generate(model, tok, q, max_new, fmt)
        peer.append(text)
        toks += k
    res["peer_hf_generate_bs1_float32_tokens_per_s"] = toks / (time.perf_counter() - t0)
    dec = Decoding(max_new, fmt=fmt)
    outs = {}

    def run(name, fn):
        toks, t0, texts = 0, time.perf_counter(), []
        for s in range(0, n, batch):
            g = fn(qs[s: s + batch])
            toks += sum(g["tokens"])
            texts += g["texts"]
        res[f"{name}_tokens_per_s"] = toks / (time.perf_counter() - t0)
        res[f"{name}_identical_to_peer"] = sum(a == b for a, b in zip(texts, peer)) / n
        outs[name] = texts

    for prec in ("float32", "bfloat16"):
        m, _ = load_for_generation(student, None, "cpu", prec)
        generate_batch(m, tok, qs[:2], Decoding(4, fmt=fmt))   # warm-up
        run(f"hf_{prec}", lambda b, m=m: generate_batch(m, tok, b, dec))
        del m
    if engine_ct2.available():
        t0 = time.perf_counter()
        engine = engine_ct2.CT2Generator(student, None)   # converts once (cached); reported apart
        res["ct2_load_seconds"] = time.perf_counter() - t0
        # loop stopping off: the same work as the peer, so tokens/s and outputs compare one to one
        run("ct2_float32", lambda b: engine.generate(b, dec, batch_size=batch, stop_loops=False))
    if vllm_available():
        # vLLM's CPU build, each precision: one call over all prompts, run twice in the same engine; the steady rate
        # is the second run's, and what a call costs on top (process, engine start, first-call warm-up) is apart
        for p in ("float32", "bfloat16"):
            g, steady, start = VLLMGenerator(student, None, p).timed_twice(qs, dec, stop_loops=False)
            res[f"vllm_{p}_tokens_per_s"] = sum(g["tokens"]) / steady
            res[f"vllm_{p}_tokens_per_s_start_included"] = sum(g["tokens"]) / (steady + start)
            res[f"vllm_{p}_start_seconds"] = start
            res[f"vllm_{p}_identical_to_peer"] = sum(a == b for a, b in zip(g["texts"], peer)) / n
    prec = resolve_precision("auto", "cpu")
    engine_name, why = choose(student, None, prec, qs, fmt=fmt, batch_size=batch, max_new_tokens=max_new)
    res["auto"] = {"precision": prec, "engine": engine_name, "why": why}
    default = f"{engine_name}_{prec}"
    peer_rate = res["peer_hf_generate_bs1_float32_tokens_per_s"]
    # vLLM's start counts: every evaluation call pays it (its steady rate is printed beside)
    rate = res[f"{default}_tokens_per_s" + ("_start_included" if engine_name == "vllm" else "")]
    res["ratio_eval_batched_vs_bs1"] = rate / peer_rate
    res["ratio_eval_batched_float32_vs_bs1"] = max(res.get("hf_float32_tokens_per_s", 0),
                                                   res.get("ct2_float32_tokens_per_s", 0)) / peer_rate
    print(json.dumps(res))


if __name__ == "__main__":
    args = sys.argv[1:]
    main(*[int(a) for a in args[:3]], *args[3:4])
