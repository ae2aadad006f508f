"""How many torch threads a GRPO step uses on a CPU: chosen by measuring on the machine, not assumed.

Why: a GRPO step of the bundled student ran 5x faster at 1 thread than at 2 on an AMX Xeon (small matrices: thread
overhead dominates), and 1.5x slower at 1 thread on an AMD EPYC with AVX512_BF16 (bench/rl_step.py). A step is
mostly sampling the group's completions, then one backward pass over them, so the first RL run of a student at a
precision and group size on a machine times exactly that, briefly, at 1 thread and at every core. The seconds are
kept (keyed by CPU, flags, cores, torch version, student, precision, group size) for every later run.
"""

from __future__ import annotations

import time

from tracestyle.measured import machine_key, measured
from tracestyle.precision import cpu_facts, thread_budget

PROBE_TOKENS = 24
THREADS = "rl_threads"      # the measurements' file in the cache folder


def _time_step(model, enc, group: int, precision: str) -> float:
    """Seconds for one rollout of `group` sampled completions of PROBE_TOKENS tokens and a backward pass over them."""
    import torch

    from tracestyle.distill.sft_hf import autocast

    t0 = time.perf_counter()
    with torch.no_grad(), autocast("cpu", precision):
        seqs = model.generate(**enc, do_sample=True, num_return_sequences=group, max_new_tokens=PROBE_TOKENS,
                              min_new_tokens=PROBE_TOKENS)
    with autocast("cpu", precision):
        loss = model(input_ids=seqs, labels=seqs).loss
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def measure(model, tok, prompt: str, student: str, precision: str, group: int) -> dict:
    """Seconds of a probe step at each thread count tried ({"1": s, "2": s}); kept per machine
    (tracestyle/measured.py). The caller's RNG state is restored, so a run's samples do not depend on whether the
    probe ran."""
    key = machine_key(f"cores={cpu_facts()['cores']}", student, precision, f"group={group}")
    return measured(THREADS, key, lambda: _probe(model, tok, prompt, precision, group))


def _probe(model, tok, prompt: str, precision: str, group: int) -> dict:
    import torch

    was_training, before = model.training, torch.get_num_threads()
    rng = torch.get_rng_state()
    enc = tok(prompt, return_tensors="pt")      # as TRL tokenizes its prompts (trl_prompt)
    got: dict = {"probe_tokens": PROBE_TOKENS, "group": group, "seconds": {}}
    model.eval()
    try:
        for n in sorted({thread_budget(), 1}, reverse=True):
            torch.set_num_threads(n)
            with torch.no_grad():
                model.generate(**enc, max_new_tokens=2, do_sample=False)   # first-call allocations are not speed
            got["seconds"][str(n)] = round(_time_step(model, enc, group, precision), 3)
    finally:
        torch.set_num_threads(before)
        torch.set_rng_state(rng)
        model.train(was_training)
    return got


def choose_threads(model, tok, prompt: str, student: str, precision: str, group: int,
                   requested: int | None = None) -> tuple[int, dict]:
    """(threads, why): the requested count, or the faster of 1 thread and every core by the probe."""
    cores = thread_budget()
    if requested:
        return requested, {"chosen_by": "requested"}
    if cores == 1:
        return 1, {"chosen_by": "one core"}
    probe = measure(model, tok, prompt, student, precision, group)
    best = min(probe["seconds"], key=lambda n: probe["seconds"][n])
    return int(best), {"chosen_by": "probe", **probe}
