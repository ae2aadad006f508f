"""How many grid jobs run at once on a CPU, and running them so: chosen by measuring on the machine.

Why: the bundled students are small, so torch's threads spend much of a step waiting on each other. On an Intel
Xeon with AMX (2 cores, bf16) one thread evaluated at 111 tokens/s and two at 188, and a LoRA step took 2.67 s at
one thread and 1.65 s at two (bench/threads.py): two jobs side by side at one thread each get more done than one job
on both cores. Other CPUs may not (memory bandwidth, SMT siblings), so the first grid on a machine times one
evaluation batch both ways, the jobs' own kind of work, and keeps the answer (tracestyle/measured.py).
"""

from __future__ import annotations

import os
import time

from tracestyle.distill.sft_hf import pick_device
from tracestyle.measured import machine_key, measured
from tracestyle.precision import THREADS_ENV

WORKERS = "grid_workers"      # the measurements' file in the cache folder
WORKERS_ENV = "TRACESTYLE_WORKERS"
PROBE_PROMPTS, PROBE_TOKENS = 32, 32
GAIN = 1.05                   # side by side must beat one job on every core by this much to be chosen
# rounds each way: two, and a third while the ratio lies within CLEAR of GAIN (1.16 here: two rounds suffice; the
# third cost 12 s of a fresh machine's quickstart)
MIN_ROUNDS, ROUNDS, CLEAR = 2, 3, 1.1


def _batch(precision: str, prompts: int, tokens: int):
    from tracestyle.distill.generation import Decoding, load_for_generation
    from tracestyle.tasks.kg.questions import generate_kg_problems

    model, tok = load_for_generation("smollm2-135m", None, "cpu", precision)
    qs = [p["question"] for p in generate_kg_problems("devops", "eval", prompts, 3)]
    return model, tok, qs, Decoding(tokens)


_SHARED = None     # what a worker process got from its pool's initializer: the probe's barrier, a grid's queue


def _share(obj) -> None:
    # synchronisation objects reach spawned workers only at their start (a plain multiprocessing Queue or Barrier
    # cannot be pickled into a task); a Manager would carry them instead, but outlives a grid killed with -9
    global _SHARED
    _SHARED = obj


_PROBE = None      # a probe worker's model, tokenizer, prompts and decoding, loaded by its first round


def _round_apart(precision: str, prompts: int, tokens: int) -> dict:
    """One round of the probe in one worker at one thread: wait for every worker, then generate the batch. The sizes
    come as arguments: a spawned worker imports this module afresh, without its caller's settings."""
    global _PROBE
    import torch

    from tracestyle.distill.generation import Decoding, generate_batch

    if _PROBE is None:
        torch.set_num_threads(1)
        _PROBE = _batch(precision, prompts, tokens)
        generate_batch(_PROBE[0], _PROBE[1], _PROBE[2][:2], Decoding(2))
    model, tok, qs, dec = _PROBE
    _SHARED.wait()          # every worker starts each round together (each is held here, so each takes one task)
    t0 = time.time()
    g = generate_batch(model, tok, qs, dec)
    return {"tokens": sum(g["tokens"]), "start": t0, "end": time.time()}


def _probe(precision: str, cores: int) -> dict:
    """The best of MIN_ROUNDS rounds each way (a round's rate varies by ~20% on these VMs, about the effect
    measured), and up to ROUNDS while the ratio is within CLEAR of the GAIN threshold."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import torch

    from tracestyle.distill.generation import Decoding, generate_batch

    model, tok, qs, dec = _batch(precision, PROBE_PROMPTS, PROBE_TOKENS)
    generate_batch(model, tok, qs[:2], Decoding(2))

    def together() -> float:
        g = generate_batch(model, tok, qs, dec)
        return sum(g["tokens"]) / max(g["seconds"], 1e-9)

    def apart(pool) -> float:
        rnd = [f.result() for f in [pool.submit(_round_apart, precision, PROBE_PROMPTS, PROBE_TOKENS)
                                    for _ in range(cores)]]
        span = max(r["end"] for r in rnd) - min(r["start"] for r in rnd)
        return sum(r["tokens"] for r in rnd) / max(span, 1e-9)

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(cores, mp_context=ctx, initializer=_share, initargs=(ctx.Barrier(cores),)) as pool:
        one, side = [together() for _ in range(MIN_ROUNDS)], [apart(pool) for _ in range(MIN_ROUNDS)]
        while len(one) < ROUNDS and GAIN / CLEAR < max(side) / max(one) < GAIN * CLEAR:
            one.append(together())
            side.append(apart(pool))
    return {"tokens_per_s_one_job_all_threads": round(max(one), 1), "threads": torch.get_num_threads(),
            "tokens_per_s_side_by_side": round(max(side), 1), "jobs": cores, "probe_prompts": PROBE_PROMPTS,
            "probe_tokens": PROBE_TOKENS, "rounds": len(one)}


def choose_workers(requested: int | str, precision: str, device: str) -> tuple[int, dict]:
    """(jobs at once, why): the requested number, else on a CPU with more than one core the measured faster of one
    job on every core and one single-thread job per core; 1 on a GPU (one model per device)."""
    cores = os.cpu_count() or 1
    if requested == "auto" and os.environ.get(WORKERS_ENV):       # pins what auto means (the test suite: 1)
        return int(os.environ[WORKERS_ENV]), {"chosen_by": WORKERS_ENV}
    if requested != "auto":
        return int(requested), {"chosen_by": "requested"}
    if pick_device(device) != "cpu" or cores < 2:
        return 1, {"chosen_by": "one job at a time on a GPU or a single core"}
    got = measured(WORKERS, machine_key(f"cores={cores}", precision), lambda: _probe(precision, cores))
    n = cores if got["tokens_per_s_side_by_side"] > GAIN * got["tokens_per_s_one_job_all_threads"] else 1
    return n, {"chosen_by": "measured", **got}


def worker_reason(n: int, why: dict) -> str:
    if why.get("chosen_by") != "measured":
        return why.get("chosen_by", "")
    return (f"measured here: {why['jobs']} single-thread jobs side by side {why['tokens_per_s_side_by_side']} "
            f"tokens/s, one job on {why['threads']} threads {why['tokens_per_s_one_job_all_threads']}")


def _worker_init(n: int, queue) -> None:
    """A worker process: its share of the cores, the line to the parent's progress display, and an end of its own
    when the grid's process is gone (kill -9 leaves workers behind; one still running a cell would race the resumed
    grid that redoes that cell)."""
    import threading

    import torch

    _share(queue)
    os.environ[THREADS_ENV] = str(n)
    torch.set_num_threads(n)
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def work_left(costs: list[float], deps: list[int | None]) -> list[float]:
    """Each job's cost plus that of the longest chain of jobs waiting on it: the order to start ready jobs in.
    Why: in list order the quickstart's last cell (Gemma 3 Diamond, training then evaluation) started last and ran
    alone on one core for 105 s while the other idled; longest chain first, the same jobs fit in 867 s instead of
    918 (replayed with their measured times)."""
    left = list(costs)
    for i in range(len(costs) - 1, -1, -1):       # a job's dependants come after it in the list
        if deps[i] is not None:
            left[deps[i]] = max(left[deps[i]], costs[deps[i]] + left[i])
    return left


def _in_worker(fn, job: dict, args: tuple, label: str):
    return fn(job, *args, queue=_SHARED, label=label)


def run_side_by_side(jobs: list[dict], deps: list[int | None], fn, args: tuple, labels: list[str], workers: int,
                     quiet: bool, priority: list[float] | None = None) -> list[dict]:
    """fn(job, *args, queue=..., label=...) for every job, `workers` at a time in spawned processes of
    cores // workers torch threads each, a job starting once the job it depends on (deps[i]: an index) has finished;
    among ready jobs the highest `priority` first (work_left), else list order.
    A failed job stops new starts; the running ones finish (their results are written), then its error is raised."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from tracestyle.progress import Board

    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    results: list = [None] * len(jobs)
    queue = ctx.Queue()
    with Board(queue, quiet) as board, \
            ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(threads, queue)) as pool:
        pending, running, done = list(range(len(jobs))), {}, set()
        while pending or running:
            ready = [i for i in pending if deps[i] is None or deps[i] in done]
            ready.sort(key=lambda i: -priority[i] if priority else 0)
            for i in ready[: workers - len(running)]:
                board.start(labels[i])
                running[pool.submit(_in_worker, fn, jobs[i], args, labels[i])] = i
                pending.remove(i)
            if not running:
                raise RuntimeError(f"grid jobs wait on jobs that never ran: {[labels[i] for i in pending]}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                i = running.pop(f)
                results[i] = f.result()       # a failure raises here; leaving the pool lets running jobs finish
                board.finish(labels[i], skipped=bool(results[i].get("skipped")))
                done.add(i)
    return results
