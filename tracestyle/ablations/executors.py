"""Executors run grid jobs: local (sequential, default) or Ray (one task per job, with its resources)."""

from __future__ import annotations

from tracestyle.errors import MissingExtraError
from tracestyle.registry import Registry

EXECUTORS: Registry = Registry("executor")


def run_job(job: dict, spec_dict: dict, eval_problems: str, quiet: bool = True, _after: object = None) -> dict:
    """One stage of one cell. Each stage skips itself when its manifest matches, so reruns are cheap."""
    from tracestyle.ablations.grid import GridSpec
    from tracestyle.distill.config import config_from_preset

    spec = GridSpec(**spec_dict)
    if job["kind"] == "eval":
        from tracestyle.distill.evaluate import run_eval
        return run_eval(job["student"], eval_problems, job["out"], job["adapter"], spec.eval_batch_size,
                        spec.eval_max_new_tokens)
    # short grid runs still get a held-out loss curve: four points over the run
    cfg = config_from_preset(job["student"], max_steps=spec.steps, batch_size=spec.batch_size, lr=spec.lr,
                             seed=job["seed"], eval_every=max(1, spec.steps // 4) if spec.steps else None)
    if job["kind"] == "train":
        from tracestyle.distill.train import run_train
        return run_train(job["data"], cfg, job["out"])
    from tracestyle.distill.rsft import run_rsft
    return run_rsft(job["problems"], cfg, job["out"], 1, spec.rsft_k, job["init"])


def local_executor(jobs: list[dict], spec, eval_problems: str, quiet: bool = False) -> list[dict]:
    from dataclasses import asdict

    from tracestyle.progress import progress_bar

    results = []
    with progress_bar("grid jobs", len(jobs), quiet) as adv:
        for job in jobs:
            results.append(run_job(job, asdict(spec), eval_problems))
            adv(1)
    return results


def ray_executor(jobs: list[dict], spec, eval_problems: str, quiet: bool = False) -> list[dict]:
    """Train/RSFT then eval per cell as chained Ray tasks; base evaluations run in parallel with training."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray") from None
    from dataclasses import asdict

    if not ray.is_initialized():
        # a local instance unless RAY_ADDRESS points at a cluster
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=not quiet)
    remote = ray.remote(num_cpus=1)(run_job)
    sd = asdict(spec)
    refs, prev = [], {}
    for job in jobs:
        key = (job.get("student"), job.get("register"), job.get("seed"))
        dep = prev.get(key) if job.get("register") else None
        # chain a cell's stages: a top-level ObjectRef argument makes Ray wait for the previous stage
        ref = remote.remote(job, sd, eval_problems, True, dep)
        prev[key] = ref
        refs.append(ref)
    return ray.get(refs)


EXECUTORS.add("local", local_executor)
EXECUTORS.add("ray", ray_executor)


def get_executor(name: str):
    return EXECUTORS.get(name)
