"""A tiny real grid: token-matched budgets, results.csv, report files, reruns that recompute nothing, bad specs."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_cli

SPEC = """task: kg
kg: world
registers: [normal, titanium]
students: [smollm2-135m]
seeds: [0]
train_n: 16
eval_n: 4
steps: 2
batch_size: 2
eval_max_new_tokens: 16
eval_batch_size: 4
token_budget: matched
"""


@pytest.mark.slow
def test_tiny_grid_killed_resumed_report_and_rerun(tmp_path):
    spec = tmp_path / "grid.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    # kill -9 inside the first training cell: finished stages must not be redone
    proc = subprocess.Popen([sys.executable, "-m", "tracestyle.cli", "--quiet", "grid", str(spec), "--out", str(out)],
                            env={**os.environ, "TRACESTYLE_QUIET": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    base_manifest = out / "cells" / "smollm2-135m" / "base" / "eval" / "manifest.json"
    first_train = out / "cells" / "smollm2-135m" / "normal" / "seed0" / "adapter"
    deadline = time.time() + 600
    while time.time() < deadline and not first_train.exists():
        time.sleep(0.1)
    time.sleep(0.5)
    assert proc.poll() is None, "the grid finished before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p: p.stat().st_mtime_ns for p in out.rglob("manifest.json")}
    assert base_manifest in done_before and not (out / "results.csv").exists()
    assert not (first_train / "manifest.json").exists(), "the kill must land inside the first training cell"
    r = run_cli("grid", str(spec), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in done_before.items()), "only unfinished cells are redone"
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {(x["student"], x["register"], x["seed"]) for x in rows} == {
        ("smollm2-135m", "base", "0"), ("smollm2-135m", "normal", "0"), ("smollm2-135m", "titanium", "0")}
    for x in rows:
        assert float(x["ci_low"]) <= float(x["accuracy"]) <= float(x["ci_high"]) and x["n"] == "4"
    tok = json.loads((out / "data" / "tokens.json").read_text())
    totals = [v["total"] for v in tok["registers"].values()]
    assert all(abs(t - tok["budget"]) <= 0.01 * tok["budget"] for t in totals), tok
    # with a budget, each register trains one full pass over its matched set: the same trace tokens for each
    for reg in ("normal", "titanium"):
        cfg = json.loads((out / "cells" / "smollm2-135m" / reg / "seed0" / "adapter" / "train_config.json").read_text())
        rows = len((out / "data" / f"{reg}.jsonl").read_text().splitlines())
        assert cfg["max_steps"] is None and cfg["epochs"] == 1, cfg
        steps = [json.loads(x)["step"] for x in
                 (out / "cells" / "smollm2-135m" / reg / "seed0" / "adapter" / "metrics.jsonl").read_text().splitlines()]
        assert steps[-1] == -(-rows // 2), (reg, rows, steps)
    # the held-out loss uses traces outside the budget: the smallest register (the budget) has none left
    assert (out / "data" / "titanium.heldout.jsonl").exists() and not (out / "data" / "normal.heldout.jsonl").exists()
    html = (out / "report.html").read_text()
    assert "Accuracy by student size" in html and "data:image/png;base64," in html and "http" not in html
    md = (out / "report.md").read_text()
    for section in ("Failure categories", "Accuracy by difficulty", "Training token budget", "Trace validity",
                    "McNemar", "No eval-leak override"):
        assert section in md, section

    manifests = {p: p.stat().st_mtime_ns for p in out.rglob("manifest.json")}
    assert len(manifests) == 9  # gen, curated, base eval, 2 x (nll, train, eval)
    r = run_cli("grid", str(spec), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("manifest.json")} == manifests, "a rerun recomputes nothing"
    r = run_cli("report", str(out))
    assert r.returncode == 0 and "titanium" in r.stdout
    jobs = [json.loads(x) for x in (out / "jobs.jsonl").read_text().splitlines()]
    assert all(j["executor"] == "local" and j["worker_pid"] == j["driver_pid"] and j["skipped"] for j in jobs)


@pytest.mark.parametrize("body,needle", [
    ("task: kg\ncolour: red\n", "grid.yaml:2: field 'colour': unknown key"),
    ("task: kg\ntrain_n: -5\n", "grid.yaml:2: field 'train_n'"),
    ("task: chess\n", "field 'task'"),
    ("task: kg\neval_hops: [5, 4]\n", "field 'eval_hops'"),
    ("task: kg\ntoken_budget: lots\n", "field 'token_budget'"),
    ("task: [kg\n", "malformed YAML"),
    ("# nothing but a comment\n", "grid.yaml:1: empty grid spec"),
])
def test_bad_grid_specs(tmp_path, body, needle):
    spec = tmp_path / "grid.yaml"
    spec.write_text(body)
    r = run_cli("grid", str(spec), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()
