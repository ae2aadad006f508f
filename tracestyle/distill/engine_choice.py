"""Which evaluation engine `--backend auto` runs on a CPU: chosen by measuring the candidates on this machine, not
by vendor.

Why: CTranslate2 beat transformers on an AVX2-only Xeon, and lost to it on an AMX one (64.8 vs 76.8 tokens/s,
float32, batch 32); CTranslate2 has no bfloat16 on CPUs at all; vLLM's CPU build (where installed) generates faster
than both once started, but its start costs ~20 s a call. So the first evaluation of a student at a batch size and
precision on a machine generates one batch with each engine that can run that precision, and the tokens/s (and
vLLM's start) are kept (keyed by CPU, flags, threads, library versions) for every later evaluation. A cell then runs
on the engine with the least expected time, CTranslate2's one-off conversion of a trained adapter and vLLM's start
per call counted.
"""

from __future__ import annotations

import time

from tracestyle.distill import engine_ct2
from tracestyle.distill.eval_vllm import ROWS_PER_CALL, VLLMGenerator, vllm_available
from tracestyle.distill.generation import Decoding, generate_batch, load_for_generation, trained_kind
from tracestyle.distill.loops import LoopWatch
from tracestyle.measured import machine_key, measured

PROBE_TOKENS = 32
# Below this many expected tokens (problems x max new tokens) no probe runs and transformers evaluates: a probe and
# a conversion cost more than the whole evaluation (and both engines give the same rows: tests/test_eval_engine.py).
CT2_MIN_TOKENS = 4096
# Rows end well before the token limit: the quickstart's 20 cells generated 14-53% of rows x limit (mean 33%,
# loops stopped), so an evaluation is expected to run this share of it. Counting the whole limit instead overrates
# the engine with the higher rate and the higher fixed cost (vLLM's start, CTranslate2's conversion).
EXPECTED_SHARE = 0.4
RATES = "engine_rates"      # the measurements' file in the cache folder


def _key(student: str, precision: str, batch_size: int) -> str:
    import torch

    return machine_key(f"threads={torch.get_num_threads()}", f"ct2={engine_ct2.version() or '-'}",
                       f"vllm={vllm_available() or '-'}", student, precision, f"batch={batch_size}")


def candidates(precision: str) -> list[str]:
    """The engines installed here that run this precision on a CPU (CTranslate2: float32 only), whose greedy rows
    are transformers' in float32 (tests/test_conformance.py)."""
    return (["hf"] + (["ct2"] if precision == "float32" and engine_ct2.available() else [])
            + (["vllm"] if vllm_available() else []))


def measure(student: str, precision: str, questions: list[str], fmt: str, batch_size: int) -> dict:
    """tokens/s of each candidate on one batch of these questions (greedy, PROBE_TOKENS new tokens), the seconds
    CTranslate2 took to convert the base model and vLLM's start; kept per machine (tracestyle/measured.py)."""
    return measured(RATES, _key(student, precision, batch_size),
                    lambda: _probe(student, precision, questions[:batch_size], fmt, batch_size))


def _probe(student: str, precision: str, qs: list[str], fmt: str, batch_size: int) -> dict:
    dec = Decoding(PROBE_TOKENS, fmt=fmt)
    got: dict = {"probe_prompts": len(qs), "probe_tokens": PROBE_TOKENS}
    model, tok = load_for_generation(student, None, "cpu", precision)
    generate_batch(model, tok, qs[:2], Decoding(4, fmt=fmt))    # warm-up: first-call allocations are not speed
    g = generate_batch(model, tok, qs, dec, watch=LoopWatch(tok))
    got["hf"] = round(sum(g["tokens"]) / max(g["seconds"], 1e-9), 2)
    del model
    if "ct2" in candidates(precision):
        t0 = time.perf_counter()
        engine = engine_ct2.CT2Generator(student, None)
        got["ct2_load_seconds"] = round(time.perf_counter() - t0, 2)
        engine.generate(qs[:2], Decoding(4, fmt=fmt), batch_size=2)
        g = engine.generate(qs, dec, batch_size=min(batch_size, engine_ct2.BEST_BATCH))
        got["ct2"] = round(sum(g["tokens"]) / max(g["seconds"], 1e-9), 2)
        del engine
    if "vllm" in candidates(precision):
        g, steady, start = VLLMGenerator(student, None, precision).timed_twice(qs, dec)
        got["vllm"] = round(sum(g["tokens"]) / max(steady, 1e-9), 2)
        got["vllm_start_seconds"] = round(start, 2)      # paid once per evaluation call
    return got


def choose(student: str, adapter: str | None, precision: str, questions: list[str], *, fmt: str, batch_size: int,
           max_new_tokens: int) -> tuple[str, dict]:
    """(engine, why): the candidate with the least expected seconds for this evaluation."""
    bound = len(questions) * max_new_tokens
    cands = candidates(precision)
    if "vllm" in cands and adapter and trained_kind(adapter) == "lora":
        # vLLM's CPU build applies LoRA unmerged, slowly: a Gold adapter's 200 quickstart questions took 505 s there
        # against 146 s for transformers over the merged weights (bf16, AMD EPYC, 2 cores); its base model is fast
        cands.remove("vllm")
    if len(cands) == 1:
        return cands[0], {"rule": f"the only engine for {precision} on this CPU"}
    if bound < CT2_MIN_TOKENS:
        return "hf", {"rule": f"{bound} tokens at most < {CT2_MIN_TOKENS}: no probe, no conversion, no engine start"}
    expected = EXPECTED_SHARE * bound
    rates = measure(student, precision, questions, fmt, batch_size)
    # a trained adapter's conversion costs about what the base model's did (a merge, then the same converter)
    convert = rates.get("ct2_load_seconds", 0.0) if adapter and not engine_ct2.is_converted(student, adapter) else 0.0
    est = {"hf": expected / max(rates["hf"], 1e-9)}
    if "ct2" in cands:
        est["ct2"] = convert + expected / max(rates.get("ct2", 0), 1e-9)
    if "vllm" in cands:
        calls = -(-len(questions) // max(batch_size, ROWS_PER_CALL))
        est["vllm"] = calls * rates.get("vllm_start_seconds", 0.0) + expected / max(rates.get("vllm", 0), 1e-9)
    best = min(est, key=est.get)
    return best, {"rule": "measured", "tokens_per_s": {e: rates.get(e) for e in cands},
                  "expected_seconds": {e: round(v, 1) for e, v in est.items()}, "probe_cached": rates["cached"]}

