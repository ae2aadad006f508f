"""Grid jobs side by side on one machine: worker processes with a share of the cores each, a cell's evaluation
after its training, the same files as jobs run one at a time; and the measured choice of how many run at once."""

import csv
import json
import os

import pytest

from conftest import run_cli

SPEC = """task: kg
kg: devops
registers: [normal, titanium]
students: [smollm2-135m]
seeds: [0]
train_n: 8
eval_n: 4
steps: 1
batch_size: 2
eval_max_new_tokens: 8
eval_batch_size: 4
"""


def test_jobs_wait_for_the_stage_they_build_on():
    from tracestyle.ablations.executors import job_deps

    jobs = [{"kind": "eval", "student": "s"}, {"kind": "nll", "student": "s", "register": "a"},
            {"kind": "train", "student": "s", "register": "a", "seed": 0},
            {"kind": "eval", "student": "s", "register": "a", "seed": 0},
            {"kind": "train", "student": "s", "register": "b", "seed": 0},
            {"kind": "eval", "student": "s", "register": "b", "seed": 0},
            {"kind": "rsft", "student": "s", "register": "a@rs", "seed": 0, "start_register": "a"},
            {"kind": "eval", "student": "s", "register": "a@rs", "seed": 0}]
    assert job_deps(jobs) == [None, None, None, 2, None, 4, 3, 6]


def test_ready_jobs_start_with_the_longest_chain_of_work():
    """Side by side, the job heading the most work left goes first: the larger student's training (its evaluation
    waits on it) before either base evaluation, a short NLL pass last, so no long chain starts at the end."""
    from tracestyle.ablations.executors import job_costs, job_deps
    from tracestyle.ablations.workers import work_left

    jobs = [{"kind": "eval", "student": "smollm2-135m"}, {"kind": "eval", "student": "gemma3-270m"},
            {"kind": "nll", "student": "smollm2-135m", "register": "a"},
            {"kind": "train", "student": "smollm2-135m", "register": "a", "seed": 0},
            {"kind": "eval", "student": "smollm2-135m", "register": "a", "seed": 0},
            {"kind": "train", "student": "gemma3-270m", "register": "a", "seed": 0},
            {"kind": "eval", "student": "gemma3-270m", "register": "a", "seed": 0},
            {"kind": "eval", "student": "./my-own-model", "register": "a", "seed": 0}]
    costs = job_costs(jobs)
    left = work_left(costs, job_deps(jobs))
    assert left[5] == costs[5] + costs[6] and left[3] == costs[3] + costs[4]
    order = sorted(range(len(jobs)), key=lambda i: -left[i])
    assert order[:2] == [5, 1] and order[-1] == 2, order
    assert costs[0] < costs[7] < costs[1], "a student without a preset counts as the mean of those with one"


@pytest.mark.slow
def test_grid_jobs_side_by_side(tmp_path):
    (tmp_path / "g.yaml").write_text(SPEC)
    out = tmp_path / "run"
    r = run_cli("grid", str(tmp_path / "g.yaml"), "--out", str(out), "--workers", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert sorted(x["register"] for x in rows) == ["base", "normal", "titanium"] and all(x["n"] == "4" for x in rows)
    # the thread count every cell ran at, as results.csv and the report header say (bf16 rows depend on it)
    share = str(max(1, (os.cpu_count() or 1) // 2))
    assert all(x["eval_threads"] == share and x["train_threads"] == ("" if x["register"] == "base" else share)
               for x in rows), rows
    assert f"Threads per job: training {share}, evaluation {share}." in (out / "report.md").read_text()
    jobs = [json.loads(x) for x in (out / "jobs.jsonl").read_text().splitlines()]
    # two worker processes, neither the grid's own, each on its share of the cores
    assert len({j["worker_pid"] for j in jobs}) == 2 and all(j["worker_pid"] != j["driver_pid"] for j in jobs)
    assert all(j["workers"] == 2 and j["threads"] == max(1, (os.cpu_count() or 1) // 2) for j in jobs), jobs
    for reg in ("normal", "titanium"):
        cell = out / "cells" / "smollm2-135m" / reg / "seed0"
        trained_at = (cell / "adapter" / "manifest.json").stat().st_mtime
        ev = cell / "eval" / "manifest.json"
        eval_started = ev.stat().st_mtime - json.loads(ev.read_text())["seconds"]
        assert eval_started >= trained_at - 0.5, "an evaluation must wait for its training"
    # a rerun one job at a time finds every stage done: the files are those a sequential run keeps
    r = run_cli("grid", str(tmp_path / "g.yaml"), "--out", str(out), "--workers", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = [json.loads(x) for x in (out / "jobs.jsonl").read_text().splitlines()]
    assert all(j["skipped"] and j["workers"] == 1 for j in jobs)
    assert f"evaluation {share}." in (out / "report.md").read_text(), "the cells' own threads, not the rerun's"


@pytest.mark.slow
def test_workers_auto_is_measured_once_per_machine(tmp_path, monkeypatch):
    """The real probe: one evaluation batch of the bundled student on every core, then one single-thread copy per
    core side by side; the answer is kept, and a GPU or a pinned TRACESTYLE_WORKERS decides without it."""
    import tracestyle.measured
    from tracestyle.ablations import workers

    # a fresh measurements file; the suite's model cache stays (a fresh one would convert the bundled model again)
    monkeypatch.setattr(tracestyle.measured, "path", lambda name: tmp_path / f"{name}.json")
    monkeypatch.delenv("TRACESTYLE_WORKERS", raising=False)
    monkeypatch.setattr(workers, "PROBE_PROMPTS", 4)
    monkeypatch.setattr(workers, "PROBE_TOKENS", 8)
    monkeypatch.setattr(workers, "ROUNDS", 1)
    monkeypatch.setattr(workers, "MIN_ROUNDS", 1)
    n, why = workers.choose_workers("auto", "float32", "auto")
    if (os.cpu_count() or 1) < 2:
        assert n == 1
        return
    assert why["chosen_by"] == "measured" and not why["cached"], why
    assert why["tokens_per_s_side_by_side"] > 0 and why["tokens_per_s_one_job_all_threads"] > 0
    faster = why["tokens_per_s_side_by_side"] > workers.GAIN * why["tokens_per_s_one_job_all_threads"]
    assert n == (why["jobs"] if faster else 1)
    again, why2 = workers.choose_workers("auto", "float32", "auto")
    assert again == n and why2["cached"]
    assert workers.choose_workers(3, "float32", "auto")[0] == 3
    assert workers.choose_workers("auto", "float32", "cuda") == (1, {"chosen_by": "one job at a time on a GPU or a "
                                                                              "single core"})
    monkeypatch.setenv("TRACESTYLE_WORKERS", "1")
    assert workers.choose_workers("auto", "float32", "auto") == (1, {"chosen_by": "TRACESTYLE_WORKERS"})


def _join_gemma(cache: str) -> str:
    os.environ["TRACESTYLE_CACHE"] = cache
    from tracestyle.distill.models import bundled_gguf

    return str(bundled_gguf("gemma3-270m"))


def test_two_processes_join_the_bundled_gemma_at_once(tmp_path):
    """Jobs side by side may both start on Gemma 3 with nothing in the cache: each joins the packaged chunks into a
    GGUF (the package writes in place; a reader of the half-written file failed on its checksum)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    (tmp_path / "gguf").mkdir()
    (tmp_path / "gguf" / "gemma-3-270m-q4_k_m.gguf").write_bytes(b"cut short by a crash")
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        paths = list(pool.map(_join_gemma, [str(tmp_path)] * 2))
    assert len(set(paths)) == 1 and os.path.getsize(paths[0]) > 200e6
    assert [p.name for p in (tmp_path / "gguf").iterdir()] == ["gemma-3-270m-q4_k_m.gguf"], "no temporary copy left"
