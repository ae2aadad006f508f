"""Which evaluation engine `--backend auto` runs on a CPU: chosen by measuring both on this machine, not by vendor.

Why: CTranslate2 beat transformers on an AVX2-only Xeon, and lost to it on an AMX one (64.8 vs 76.8 tokens/s,
float32, batch 32); CTranslate2 has no bfloat16 on CPUs at all. So the first evaluation of a student at a batch size
and precision on a machine generates one batch with each engine that can run that precision, and the tokens/s are
kept (keyed by CPU, flags, threads, library versions) for every later evaluation. A cell then runs on the engine
with the least expected time, CTranslate2's one-off conversion of a trained adapter counted.
"""

from __future__ import annotations

import json
import time

from tracestyle.distill import engine_ct2
from tracestyle.distill.generation import Decoding, generate_batch, load_for_generation
from tracestyle.distill.loops import LoopWatch
from tracestyle.jsonl import atomic_write_text
from tracestyle.layout import cache_root
from tracestyle.precision import cpu_facts

PROBE_TOKENS = 32
# Below this many expected tokens (problems x max new tokens) no probe runs and transformers evaluates: a probe and
# a conversion cost more than the whole evaluation (and both engines give the same rows: tests/test_eval_engine.py).
CT2_MIN_TOKENS = 4096


def _rates_file():
    return cache_root() / "engine_rates.json"


def _key(student: str, precision: str, batch_size: int) -> str:
    import torch

    f = cpu_facts()
    ct2 = engine_ct2.version() or "-"
    return "|".join([f["cpu"], ",".join(f["flags"]), f"threads={torch.get_num_threads()}", f"torch={torch.__version__}",
                     f"ct2={ct2}", student, precision, f"batch={batch_size}"])


def _load_rates() -> dict:
    try:
        return json.loads(_rates_file().read_text())
    except (OSError, ValueError):
        return {}


def candidates(precision: str) -> list[str]:
    """The engines whose outputs follow transformers' at this precision on a CPU (CTranslate2: float32 only)."""
    return ["hf", "ct2"] if precision == "float32" and engine_ct2.available() else ["hf"]


def measure(student: str, precision: str, questions: list[str], fmt: str, batch_size: int) -> dict:
    """tokens/s of each candidate on one batch of these questions (greedy, PROBE_TOKENS new tokens), and the seconds
    CTranslate2 took to convert the base model; cached per machine."""
    key = _key(student, precision, batch_size)
    rates = _load_rates()
    if key in rates:
        return {**rates[key], "cached": True}
    qs = questions[:batch_size]
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
    rates[key] = got
    _rates_file().parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(_rates_file(), json.dumps(rates, indent=1))
    return {**got, "cached": False}


def choose(student: str, adapter: str | None, precision: str, questions: list[str], *, fmt: str, batch_size: int,
           max_new_tokens: int) -> tuple[str, dict]:
    """(engine, why): the candidate with the least expected seconds for this evaluation."""
    expected = len(questions) * max_new_tokens
    cands = candidates(precision)
    if len(cands) == 1:
        return cands[0], {"rule": f"the only engine for {precision} on this CPU"}
    if expected < CT2_MIN_TOKENS:
        return "hf", {"rule": f"{expected} expected tokens < {CT2_MIN_TOKENS}: no probe, no conversion"}
    rates = measure(student, precision, questions, fmt, batch_size)
    # a trained adapter's conversion costs about what the base model's did (a merge, then the same converter)
    convert = rates.get("ct2_load_seconds", 0.0) if adapter and not engine_ct2.is_converted(student, adapter) else 0.0
    est = {"hf": expected / max(rates["hf"], 1e-9), "ct2": convert + expected / max(rates.get("ct2", 0), 1e-9)}
    best = min(est, key=est.get)
    return best, {"rule": "measured", "tokens_per_s": {e: rates[e] for e in cands},
                  "expected_seconds": {e: round(v, 1) for e, v in est.items()}, "probe_cached": rates["cached"]}

