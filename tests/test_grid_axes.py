"""Corruption and mix axes, a curriculum and the student's NLL before training, in a tiny real grid."""

import csv
import json

import pytest

from conftest import run_cli

SPEC = """task: kg
kg: world
registers: [normal, titanium]
students: [smollm2-135m]
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
def test_grid_with_corruption_mix_curriculum_and_nll(tmp_path):
    spec = tmp_path / "grid.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    r = run_cli("grid", str(spec), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "spec.json").read_text())["conditions"] == CONDITIONS
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {x["register"] for x in rows} == {"base", *CONDITIONS}
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
    # a curriculum: easy (fewer hops) first, and the trainer keeps that order
    for c in CONDITIONS:
        hops = [x["problem"]["difficulty"]["hops"] for x in data[c]]
        assert hops == sorted(hops), (c, hops)
        cfg = json.loads((out / "cells" / "smollm2-135m" / c / "seed0" / "adapter" / "train_config.json").read_text())
        assert cfg["curriculum"] is True
    for c in CONDITIONS:
        nll = json.loads((out / "cells" / "smollm2-135m" / c / "nll" / "nll.json").read_text())
        assert 0 < nll["nll"] < 20 and nll["rows"] == 4 and nll["tokens"] > 0
    md = (out / "report.md").read_text()
    assert "Corrupted and mixed traces against the clean register" in md
    assert "normal+wrong_edge" in md and "mix-normal50-titanium50" in md
    assert "NLL before training" in md and "Spearman" in md
    assert 'id="plot-nll"' in (out / "report.html").read_text()
    # a second run recomputes nothing
    before = {p: p.stat().st_mtime_ns for p in out.rglob("manifest.json")}
    r = run_cli("grid", str(spec), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())


@pytest.mark.parametrize("extra,key", [("corruption: [wrong_value]\n", "corruption"),
                                       ("corruption: [shuffle]\n", "corruption"),
                                       ("mix:\n  - {normal: 0.5, titanium: 0.4}\n", "mix"),
                                       ("mix:\n  - {normal: 0.5, gold: 0.5}\n", "mix"),
                                       ("curriculum: hardest\n", "curriculum")])
def test_bad_axes_name_file_line_and_key(tmp_path, extra, key):
    spec = tmp_path / "grid.yaml"
    spec.write_text("task: kg\nregisters: [normal, titanium]\ntoken_budget: matched\n" + extra)
    r = run_cli("grid", str(spec), "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"{spec}:4: field '{key}': " in r.stderr, r.stderr    # the file, the line of the key, the key


@pytest.mark.parametrize("name", ["kg_grid.yaml", "corruption_mix_grid.yaml", "gsm8k_steps_grid.yaml",
                                  "reasoning_gym_grid.yaml", "phantomwiki_grid.yaml"])
def test_example_specs_load(name):
    from pathlib import Path

    from tracestyle.ablations.spec import GridSpec

    spec = GridSpec.load(Path(__file__).resolve().parents[1] / "examples" / name)
    assert spec.conditions()[: len(spec.registers)] == spec.registers


@pytest.mark.slow
def test_example_grid_on_the_local_llama_teacher(tmp_path, llama_server, gsm8k_dir):
    """examples/llama_teacher_grid.yaml against the real llama.cpp server (its port rewritten)."""
    from pathlib import Path

    src = (Path(__file__).resolve().parents[1] / "examples" / "llama_teacher_grid.yaml").read_text()
    spec = tmp_path / "grid.yaml"
    spec.write_text(src.replace("http://127.0.0.1:8080/v1", llama_server["base_url"]))
    out = tmp_path / "run"
    r = run_cli("grid", str(spec), "--out", str(out), env={"TRACESTYLE_GSM8K": str(gsm8k_dir)})
    assert r.returncode == 0, r.stderr
    gen = json.loads((out / "gen" / "manifest.json").read_text())
    assert gen["config"]["teacher"] == "openai" and gen["config"]["openai"]["model"] == "smollm2"
    assert gen["counts"]["rows"] == 8 * 2 * 2 and gen["usage"]["per_register"]["normal"]["completion_tokens"] > 0
    md = (out / "report.md").read_text()
    assert f"Teacher: smollm2 at {llama_server['base_url']}" in md and "Teacher tokens per register" in md
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert ("smollm2-135m", "base") in {(x["student"], x["register"]) for x in rows}
    tok = json.loads((out / "data" / "tokens.json").read_text())
    for reg, v in tok["registers"].items():   # a register the filters emptied is reported, not trained
        trained = (out / "cells" / "smollm2-135m" / reg / "seed0" / "eval" / "manifest.json").exists()
        assert trained == bool(v["rows"]), (reg, v)
        if not v["rows"]:
            assert reg in md.split("Not trained")[1].split("\n")[0]
