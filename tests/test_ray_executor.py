"""The Ray executor on a local Ray instance: the same tiny grid as the local executor, one Ray task per stage."""

import csv
import json

import pytest

from conftest import run_cli

SPEC = """task: kg
kg: devops
registers: [normal]
students: [smollm2-135m]
seeds: [0]
train_n: 8
eval_n: 3
steps: 1
batch_size: 2
eval_max_new_tokens: 8
eval_batch_size: 3
executor: ray
"""


def test_ray_tasks_ask_for_the_gpus_their_stage_needs():
    """Ray hides every GPU from a task that asks for none: on a GPU cluster each model stage asks for one."""
    from tracestyle.ablations.executors import job_resources

    for kind in ("train", "rsft", "eval", "nll"):
        assert job_resources({"kind": kind}, {"CPU": 16.0, "GPU": 8.0}) == {"num_cpus": 1, "num_gpus": 1}
        assert job_resources({"kind": kind}, {"CPU": 2.0}) == {"num_cpus": 1, "num_gpus": 0}


@pytest.mark.slow
def test_ray_executor_runs_a_grid(tmp_path):
    ray = pytest.importorskip("ray")
    (tmp_path / "g.yaml").write_text(SPEC)
    try:
        r = run_cli("grid", str(tmp_path / "g.yaml"), "--out", str(tmp_path / "run"),
                    env={"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_USAGE_STATS_ENABLED": "0"})
    finally:
        ray.shutdown()    # the grid ran in this process: its local Ray instance goes with the test
    assert r.returncode == 0, r.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "run" / "results.csv")))
    assert {x["register"] for x in rows} == {"base", "normal"} and all(x["n"] == "3" for x in rows)
    assert (tmp_path / "run" / "cells" / "smollm2-135m" / "normal" / "seed0" / "adapter" / "adapter_config.json").exists()
    # Ray ran the jobs: each ran in a Ray worker process, not in the grid's own process
    jobs = [json.loads(x) for x in (tmp_path / "run" / "jobs.jsonl").read_text().splitlines()]
    assert [j["kind"] for j in jobs] == ["eval", "nll", "train", "eval"] and all(j["executor"] == "ray" for j in jobs)
    assert all(j["worker_pid"] and j["worker_pid"] != j["driver_pid"] for j in jobs), jobs
