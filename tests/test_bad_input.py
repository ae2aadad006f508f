"""More bad input across commands: each is one clear line naming file, line and field, a non-zero exit,
and nothing already written is damaged. (CLI curate cases live in test_cli.py, KG files in test_kg.py,
grid specs in test_grid.py, templates in test_registers.py.)"""

import json

import pytest

from conftest import run_cli

PROB = {"id": "p1", "task": "gsm8k", "question": "What is 2+2?", "gold": "4", "split": "eval"}


def _one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _write(p, rows):
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return p


@pytest.mark.parametrize("rows,needles", [
    ([PROB, PROB], ["p.jsonl:2", "field 'id'", "duplicate id"]),
    (['{"id": "p1", "task": "gsm8k", "question": "q", "gold": NaN}'], ["p.jsonl:1", "malformed JSON"]),
    (['{"id": "p1", "task": "gsm8k", "question": "q", "gold": Infinity}'], ["p.jsonl:1", "malformed JSON"]),
    ([{**PROB, "question": 7}], ["p.jsonl:1", "field 'question'"]),
    ([{k: v for k, v in PROB.items() if k != "question"}], ["p.jsonl:1", "field 'question'"]),
])
def test_eval_problem_files(tmp_path, rows, needles):
    out = tmp_path / "out"
    out.mkdir()
    (out / "eval.jsonl").write_text("earlier\n")
    r = run_cli("eval", "--problems", str(_write(tmp_path / "p.jsonl", rows)), "--out", str(out))
    _one_line_error(r, *needles)
    assert (out / "eval.jsonl").read_text() == "earlier\n"


def test_eval_adapter_folder_without_config(tmp_path):
    _write(tmp_path / "p.jsonl", [PROB])
    (tmp_path / "ad").mkdir()
    r = run_cli("eval", "--problems", str(tmp_path / "p.jsonl"), "--adapter", str(tmp_path / "ad"),
                "--out", str(tmp_path / "o"))
    _one_line_error(r, "adapter_config.json")


@pytest.mark.parametrize("rows,needles", [
    ([{"question": "q", "text": "t", "split": "eval"}], ["d.jsonl:1", "field 'split'", "--allow-eval-leak"]),
    ([{"question": "q"}], ["d.jsonl:1", "field 'text'"]),
    ([{"question": "q", "text": ["t"]}], ["d.jsonl:1", "field 'text'"]),
])
def test_train_data(tmp_path, rows, needles):
    r = run_cli("train", "--data", str(_write(tmp_path / "d.jsonl", rows)), "--out", str(tmp_path / "o"))
    _one_line_error(r, *needles)


def test_train_bad_hyperparameter(tmp_path):
    r = run_cli("train", "--data", str(_write(tmp_path / "d.jsonl", [{"question": "q", "text": "t"}])),
                "--out", str(tmp_path / "o"), "--lr", "-1")
    _one_line_error(r, "field 'lr'")


def test_enormous_trace_is_dropped_with_reason(tmp_path):
    big = {"problem_id": "x", "question": "What is 2+2?", "gold": "4", "register": "normal",
           "text": "2+2=4\n" * 500_000 + "#### 4"}
    r = run_cli("curate", "--in", str(_write(tmp_path / "t.jsonl", [big])), "--task", "gsm8k",
                "--filters", "length,correct", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "o" / "dropped.jsonl").read_text())
    assert d["reason"] == "length:too_long"


@pytest.mark.parametrize("setup,args,needles", [
    ("none", ["--registers", "normal,fancy"], ["unknown register 'fancy'"]),
    ("file", ["--registers-dir", "{tmp}/notadir"], ["notadir", "not a directory"]),
    ("yaml", ["--registers-dir", "{tmp}/regs", "--registers", "r1"], ["register.yaml:2", "malformed YAML"]),
    ("key", ["--registers-dir", "{tmp}/regs", "--registers", "r1"], ["register.yaml", "field 'colour'"]),
])
def test_register_folders(tmp_path, setup, args, needles):
    if setup == "file":
        (tmp_path / "notadir").write_text("x")
    if setup in ("yaml", "key"):
        d = tmp_path / "regs" / "r1"
        d.mkdir(parents=True)
        (d / "system.j2").write_text("x")
        (d / "register.yaml").write_text("name: r1\ndescription: [unclosed\n" if setup == "yaml" else "colour: red\n")
    r = run_cli("generate", "--task", "kg", "--n", "2", "--out", str(tmp_path / "o"),
                *[a.replace("{tmp}", str(tmp_path)) for a in args])
    _one_line_error(r, *needles)


@pytest.mark.parametrize("args,needles", [
    (["--n", "0"], ["field 'n'"]),
    (["--kg", "atlantis"], ["unknown KG"]),
    (["--train-hops", "3-1"], ["hop range"]),
])
def test_problems_bad_requests(tmp_path, args, needles):
    r = run_cli("problems", "--task", "kg", "--split", "train", *args, "--out", str(tmp_path / "p.jsonl"))
    _one_line_error(r, *needles)
    assert not (tmp_path / "p.jsonl").exists()


@pytest.mark.parametrize("body,needle", [
    ("students: [gpt-99]\n", "field 'students'"),
    ("registers: [normal, shiny]\n", "field 'registers'"),
    ("seeds: []\n", "field 'seeds'"),
    ("steps: 0\n", "field 'steps'"),
])
def test_grid_impossible_values(tmp_path, body, needle):
    (tmp_path / "g.yaml").write_text("task: kg\n" + body)
    r = run_cli("grid", str(tmp_path / "g.yaml"), "--out", str(tmp_path / "o"))
    _one_line_error(r, "g.yaml:2", needle)
