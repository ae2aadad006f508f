"""Grid axes: bad values named with file, line and key; the example specs load; the example grid on the local
llama.cpp teacher. (The axes themselves run in tests/test_grid.py's one tiny grid.)"""

import csv
import json

import pytest

from conftest import run_cli


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
