"""A tiny real grid with every axis: token-matched budgets, corruption, mixes, a curriculum, the NLL before
training, results.csv and report files, kill -9 and resume, reruns that recompute nothing, bad specs."""

import csv
import json
import signal
import time

import pytest

from conftest import cli_process, run_cli

# one tiny grid with every axis folded in (corruption, mix, curriculum, the NLL before training), killed inside its
# first training cell and resumed
SPEC = """task: kg
kg: world
registers: [normal, titanium]
students: [smollm2-135m]
seeds: [0]
train_hops: [1, 3]
train_n: 24
eval_n: 4
batch_size: 2
eval_max_new_tokens: 16
eval_batch_size: 4
token_budget: 600
corruption: [wrong_edge]
corruption_registers: [normal]
mix:
  - {normal: 0.5, titanium: 0.5}
curriculum: easy_first
nll_sample: 4
"""
CONDITIONS = ["normal", "titanium", "normal+wrong_edge", "mix-normal50-titanium50"]


@pytest.mark.slow
def test_tiny_grid_killed_resumed_report_and_rerun(tmp_path):
    spec = tmp_path / "grid.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    # kill -9 inside the first training cell: finished stages must not be redone
    proc = cli_process("grid", str(spec), "--out", str(out))
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
    assert json.loads((out / "spec.json").read_text())["conditions"] == CONDITIONS
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {(x["student"], x["register"], x["seed"]) for x in rows} == {
        ("smollm2-135m", c, "0") for c in ["base", *CONDITIONS]}
    for x in rows:
        assert float(x["ci_low"]) <= float(x["accuracy"]) <= float(x["ci_high"]) and x["n"] == "4"
    tok = json.loads((out / "data" / "tokens.json").read_text())
    for c in CONDITIONS:
        v = tok["registers"][c]
        assert v["within"] and abs(v["total"] - tok["budget"]) <= 0.01 * tok["budget"], (c, v, tok["budget"])
    assert "corruption_skipped" in tok["registers"]["normal+wrong_edge"]
    assert tok["registers"]["mix-normal50-titanium50"]["shares"] == {"normal": 0.5, "titanium": 0.5}
    data = {c: [json.loads(x) for x in (out / "data" / f"{c}.jsonl").read_text().splitlines()] for c in CONDITIONS}
    # corrupted rows say how they were corrupted (deterministic from the data seed); clean rows carry nothing
    assert all(x["corruption"]["kind"] == "wrong_edge" and x["corruption"]["seed"] == 0
               for x in data["normal+wrong_edge"])
    assert not any("corruption" in x for x in data["normal"])
    assert {x["register"] for x in data["mix-normal50-titanium50"]} == {"normal", "titanium"}
    for c in CONDITIONS:
        cell = out / "cells" / "smollm2-135m" / c
        # a curriculum: easy (fewer hops) first, and the trainer keeps that order
        hops = [x["problem"]["difficulty"]["hops"] for x in data[c]]
        assert hops == sorted(hops), (c, hops)
        cfg = json.loads((cell / "seed0" / "adapter" / "train_config.json").read_text())
        assert cfg["curriculum"] is True
        # with a budget, each condition trains one full pass over its matched set: the same trace tokens for each
        assert cfg["max_steps"] is None and cfg["epochs"] == 1, cfg
        steps = [json.loads(x)["step"] for x in (cell / "seed0" / "adapter" / "metrics.jsonl").read_text().splitlines()]
        assert steps[-1] == -(-len(data[c]) // 2), (c, len(data[c]), steps)
        nll = json.loads((cell / "nll" / "nll.json").read_text())
        assert 0 < nll["nll"] < 20 and nll["rows"] == 4 and nll["tokens"] > 0
    # the held-out loss uses the register's traces outside the budget: there when some were left out
    for reg in ("normal", "titanium"):
        v = tok["registers"][reg]
        assert (out / "data" / f"{reg}.heldout.jsonl").exists() == (v["available_rows"] > v["rows"]), (reg, v)
    html = (out / "report.html").read_text()
    assert "Accuracy by student size" in html and "data:image/png;base64," in html and "http" not in html
    assert 'id="plot-nll"' in html
    md = (out / "report.md").read_text()
    for section in ("Failure categories", "Accuracy by difficulty", "Training token budget", "Trace validity",
                    "McNemar", "No eval-leak override", "Corrupted and mixed traces against the clean register",
                    "NLL before training", "Spearman", "normal+wrong_edge", "mix-normal50-titanium50"):
        assert section in md, section

    manifests = {p: p.stat().st_mtime_ns for p in out.rglob("manifest.json")}
    assert len(manifests) == 3 + 3 * len(CONDITIONS)  # gen, curated, base eval; per condition nll, train, eval
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
