"""Executors run grid jobs: local (this machine: one at a time, or side by side where measured faster; default) or Ray
(one task per job, with its resources)."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path

from tracestyle.ablations.spec import GridSpec
from tracestyle.ablations.workers import choose_workers, run_side_by_side, work_left, worker_reason
from tracestyle.distill.config import EvalConfig, RSFTConfig, config_from_preset
from tracestyle.distill.evaluate import run_eval
from tracestyle.distill.models import load_preset
from tracestyle.distill.nll import run_nll
from tracestyle.distill.rsft import run_rsft
from tracestyle.distill.train import run_train
from tracestyle.errors import MissingExtraError
from tracestyle.progress import queue_progress, silenced, stage_progress
from tracestyle.registry import Registry
from tracestyle.rl.grpo import RLConfig, run_rl

EXECUTORS: Registry = Registry("executor")


def len_rows(path: str) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def train_config(spec: GridSpec, job: dict):
    """A cell's training config. With a token budget every register trains `epochs` full passes over its matched
    set, so each sees the same number of trace tokens; a fixed step count would hand long-trace registers more."""
    if spec.token_budget != "none":
        cfg = config_from_preset(job["student"], epochs=spec.epochs, batch_size=spec.batch_size, lr=spec.lr,
                                 seed=job["seed"], dtype=spec.precision, device=spec.device)
        # the held-out loss comes from the register's traces left out of the budget (data/<reg>.heldout.jsonl),
        # never from the matched set itself: holding some of it out would break the match
        cfg.max_steps, cfg.eval_fraction = None, 0.0
        cfg.curriculum = spec.curriculum == "easy_first"
        # two points (half-way and the end): each held-out pass costs several training steps on a CPU
        # (quickstart, Gold on SmolLM2: four passes were 76 of the cell's 107 s)
        if job.get("data"):
            cfg.eval_every = max(1, -(-cfg.total_steps(len_rows(job["data"])) // 2))
        return _backend(cfg, spec).validate()
    # short grid runs still get a held-out loss curve: four points over the run
    cfg = config_from_preset(job["student"], max_steps=spec.steps, batch_size=spec.batch_size, lr=spec.lr,
                             seed=job["seed"], eval_every=max(1, spec.steps // 4) if spec.steps else None,
                             dtype=spec.precision, device=spec.device, curriculum=spec.curriculum == "easy_first" or None)
    return _backend(cfg, spec)


def _backend(cfg, spec: GridSpec):
    cfg.backend = spec.train_backend
    if spec.full:
        cfg.lora = False
    return cfg


def job_label(job: dict) -> str:
    cell = f"{job['student']}/{job.get('register', 'base')}" + (f"/seed{job['seed']}" if "seed" in job else "")
    return f"{job['kind']} {cell}" + (f" on {job['transfer']}" if job.get("transfer") else "")


def run_job(job: dict, spec_dict: dict, eval_problems: str, quiet: bool = True, _after: object = None, *,
            label: str | None = None, queue=None) -> dict:
    """One stage of one cell. Each stage skips itself when its manifest matches, so reruns are cheap.
    The result names the process that ran it (worker_pid), so a caller can tell where jobs ran. `queue`: a worker
    process's line to the parent's progress display (jobs side by side)."""
    res = _run_job(job, spec_dict, eval_problems, quiet, label=label, queue=queue)
    return {**res, "worker_pid": os.getpid(), "threads": torch_threads()}


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _run_job(job: dict, spec_dict: dict, eval_problems: str, quiet: bool, *, label: str | None, queue) -> dict:
    spec = GridSpec(**spec_dict)
    label = label or job_label(job)
    progress = queue_progress(queue, label) if queue is not None else stage_progress(label, quiet)
    if job["kind"] == "eval":
        ev = EvalConfig(adapter=job["adapter"], batch_size=spec.eval_batch_size, max_new_tokens=spec.eval_max_new_tokens,
                        precision=spec.precision, device=spec.device, backend=spec.eval_backend)
        res = run_eval(job["student"], job.get("problems") or eval_problems, job["out"], ev, progress=progress)
        return res
    if job["kind"] == "nll":
        return run_nll(job["student"], job["data"], job["out"], sample=job["sample"], progress=progress,
                       precision=spec.precision)
    cfg = train_config(spec, job)
    if job["kind"] == "rl":
        rl = RLConfig(reward=job["reward"], steps=spec.rl_steps, num_generations=spec.rl_generations,
                      prompts_per_step=spec.rl_prompts_per_step, max_new_tokens=spec.rl_max_new_tokens,
                      temperature=spec.rl_temperature, lr=spec.rl_lr, beta=spec.rl_beta, init_adapter=job["init"],
                      register=job.get("start_register"), registers_dir=spec.registers_dir,
                      solvable_k=spec.rl_solvable_k, save_every=max(1, spec.rl_steps // 4), rollouts=spec.rl_rollouts)
        return run_rl(job["problems"], cfg, job["out"], rl, progress=progress)
    if job["kind"] == "train":
        held = job.get("heldout") if job.get("heldout") and Path(job["heldout"]).exists() else None
        res = run_train(job["data"], cfg, job["out"], progress=progress, eval_data=held)
    else:
        # samples get the evaluation's token budget (auto: the longest trained trace x 1.25): a fixed cap shorter
        # than a long register's traces would reject its samples as cut off and bias RSFT against that register
        budget = spec.eval_max_new_tokens if isinstance(spec.eval_max_new_tokens, int) else RSFTConfig.max_new_tokens
        rs = RSFTConfig(rounds=1, k=job.get("k", spec.rsft_k), init_adapter=job["init"], max_new_tokens=budget,
                        match_difficulty=job.get("match_difficulty"), pool_n=job.get("pool_n", spec.train_n))
        res = run_rsft(job["problems"], cfg, job["out"], rs, progress=progress)
    return res


def local_executor(jobs: list[dict], spec: GridSpec, eval_problems: str, quiet: bool = False) -> list[dict]:
    """This machine's jobs, one at a time or side by side (spec.workers; auto: measured, ablations/workers.py).
    Each job shows its own bar (steps and loss, problems evaluated) with an ETA, numbered among all jobs."""
    labels = [f"[{i}/{len(jobs)}] {job_label(job)}" for i, job in enumerate(jobs, 1)]
    n, why = choose_workers(spec.workers, spec.precision, spec.device)
    if not silenced(quiet):
        print(f"jobs at once: {n} ({worker_reason(n, why)})", file=sys.stderr)
    if n <= 1 or len(jobs) < 2:
        return [{**run_job(job, asdict(spec), eval_problems, quiet, label=label), "workers": 1}
                for job, label in zip(jobs, labels)]
    deps = job_deps(jobs)
    results = run_side_by_side(jobs, deps, run_job, (asdict(spec), eval_problems, True), labels, n, quiet,
                               priority=work_left(job_costs(jobs), deps))
    return [{**r, "workers": n} for r in results]


# a stage's rough cost per student parameter, relative to an evaluation (the quickstart's, 2 CPU cores: evaluations
# 51-162 s, trainings 57-95 s, NLL passes 5-17 s); only their order matters, to start the longest chains first
KIND_COST = {"eval": 1.0, "train": 0.7, "nll": 0.1, "rsft": 1.5, "rl": 1.5}


def job_costs(jobs: list[dict]) -> list[float]:
    """Each job's rough cost: its kind's weight times its student's parameter count (a student without a preset,
    a path or hub id, counts as the mean of those with one)."""
    sizes = {s: load_preset(s).params for s in {j["student"] for j in jobs}}
    known = [v for v in sizes.values() if v]
    mean = sum(known) / len(known) if known else 1.0
    return [KIND_COST.get(j["kind"], 1.0) * (sizes[j["student"]] or mean) for j in jobs]


def job_deps(jobs: list[dict]) -> list[int | None]:
    """The job each job waits for (an index, or None): the previous stage of its cell (a trained cell's evaluation
    waits for its training), and for an RL or RSFT variant the SFT cell it starts from."""
    deps, prev = [], {}
    for i, job in enumerate(jobs):
        key = (job.get("student"), job.get("register"), job.get("seed"))
        dep = prev.get(key) if job.get("register") else None
        if job["kind"] in ("rl", "rsft") and job.get("start_register"):
            dep = prev.get((job["student"], job["start_register"], job["seed"]))
        prev[key] = i
        deps.append(dep)
    return deps


def job_resources(job: dict, cluster: dict) -> dict:
    """What a Ray task for this stage asks for. Ray hides every GPU from a task that asks for none (it sets
    CUDA_VISIBLE_DEVICES to empty), so on a cluster with GPUs each model stage asks for one and runs on it; on a
    CPU-only cluster a stage takes one CPU (torch uses the threads it is given)."""
    gpus = cluster.get("GPU", 0)
    if gpus >= 1 and job["kind"] in ("train", "rsft", "rl", "eval", "nll"):
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": 1, "num_gpus": 0}


def ray_executor(jobs: list[dict], spec: GridSpec, eval_problems: str, quiet: bool = False) -> list[dict]:
    """Train/RSFT then eval per cell as chained Ray tasks; base evaluations run in parallel with training."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray") from None
    if not ray.is_initialized():
        # a local instance unless RAY_ADDRESS points at a cluster
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=not quiet)
    remote = ray.remote(run_job)
    cluster = ray.cluster_resources()
    sd = asdict(spec)
    refs = []
    for job, dep in zip(jobs, job_deps(jobs)):
        # chain a cell's stages: a top-level ObjectRef argument makes Ray wait for the previous stage
        refs.append(remote.options(**job_resources(job, cluster)).remote(
            job, sd, eval_problems, True, None if dep is None else refs[dep]))
    return ray.get(refs)


EXECUTORS.add("local", local_executor)
EXECUTORS.add("ray", ray_executor)


def get_executor(name: str):
    return EXECUTORS.get(name)
