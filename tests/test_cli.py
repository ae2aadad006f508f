"""The CLI contract as scripts call it, and bad input: one line naming file/line/field, non-zero exit,
nothing already written damaged."""

import json

import pytest

from conftest import run_cli


def test_contract_generate_curate_problems(tmp_path, gsm8k_dir):
    r = run_cli("generate", "--task", "gsm8k", "--split", "test", "--registers", "normal,gold,titanium,diamond",
                "--teacher", "template", "--data", str(gsm8k_dir), "--out", str(tmp_path / "g"))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "g" / "traces.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * 1319
    assert all({"problem_id", "register", "text", "gold", "split", "register_version", "teacher"} <= r.keys()
               for r in rows)
    assert (tmp_path / "g" / "manifest.json").exists()
    r = run_cli("problems", "--task", "kg", "--split", "train", "--n", "40", "--seed", "1",
                "--out", str(tmp_path / "p.jsonl"))
    assert r.returncode == 0, r.stderr
    r = run_cli("generate", "--problems", str(tmp_path / "p.jsonl"), "--registers", "normal,titanium",
                "--teacher", "template", "--out", str(tmp_path / "kg"))
    assert r.returncode == 0, r.stderr
    r = run_cli("curate", "--in", str(tmp_path / "kg" / "traces.jsonl"), "--task", "kg", "--filters",
                "correct,kg_path,compliance", "--out", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    kept = (tmp_path / "c" / "kept.jsonl").read_text().splitlines()
    assert len(kept) == 80 and (tmp_path / "c" / "dropped.jsonl").read_text() == ""
    man = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert man["counts"]["kept"] == 80 and man["stage"] == "curate"
    r = run_cli("stats", str(tmp_path / "c"), "--tokenizer", "whitespace")
    assert r.returncode == 0 and "titanium" in r.stdout


def test_curate_traces_from_elsewhere_with_field_names(tmp_path):
    src = tmp_path / "mine.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in [
        {"qid": 1, "q": "What is 2+3?", "ans": 5, "completion": "2 + 3 = 5\n#### 5", "style": "normal"},
        {"qid": 2, "q": "What is 2*3?", "ans": "6", "completion": "2 * 3 = 5\n#### 5", "style": "normal"},
        {"qid": 3, "q": "What is 1+1?", "ans": "2", "completion": "ANSWER: 2", "style": "normal"},
    ]) + "\n")
    r = run_cli("curate", "--in", str(src), "--task", "gsm8k", "--filters", "correct,compliance",
                "--id-field", "qid", "--question-field", "q", "--gold-field", "ans", "--text-field", "completion",
                "--register-field", "style", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    dropped = [json.loads(x) for x in (tmp_path / "o" / "dropped.jsonl").read_text().splitlines()]
    assert [d["reason"] for d in dropped] == ["wrong_answer", "noncompliant:too_few_lines"]
    assert len((tmp_path / "o" / "kept.jsonl").read_text().splitlines()) == 1


GOOD = {"problem_id": "a", "question": "What is 2+2?", "gold": "4", "text": "2+2=4\n#### 4", "register": "normal"}


@pytest.mark.parametrize("content,needle", [
    (json.dumps(GOOD) + "\n{not json\n", ":2: malformed JSON"),
    (json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "text": None}) + "\n", ":2: field 'text': missing"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "gold"}) + "\n", ":1: field 'gold': missing"),
    (b"\xff\xfe garbage\n", ":1: undecodable bytes"),
    ("", "empty file"),
    ("\n\n", "empty file"),
    (json.dumps({**GOOD, "text": 42}) + "\n", ":1: field 'text': expected a string"),
    (json.dumps(GOOD).replace('"4"}', 'NaN}').replace('"gold": "4"', '"gold": NaN') + "\n", ":1: malformed JSON"),
    ('[1, 2]\n', ":1: expected a JSON object"),
    (json.dumps({**GOOD, "gold": True}) + "\n", ":1: field 'gold'"),
    (json.dumps({**GOOD, "question": ""}) + "\n", ":1: field 'question'"),
])
def test_bad_input_is_one_clear_line_and_output_untouched(tmp_path, content, needle):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept.jsonl").write_text("precious\n")
    r = run_cli("curate", "--in", str(bad), "--task", "gsm8k", "--out", str(out))
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "bad.jsonl" in lines[0] and needle in lines[0], lines[0]
    assert (out / "kept.jsonl").read_text() == "precious\n" and sorted(p.name for p in out.iterdir()) == ["kept.jsonl"]


def test_bad_problems_file_for_generate(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"id": "x", "task": "kg", "question": "q"}\n')
    r = run_cli("generate", "--problems", str(p), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "p.jsonl:1: field 'gold': missing" in r.stderr


def test_rerun_is_skipped(tmp_path):
    args = ("generate", "--task", "kg", "--split", "train", "--n", "5", "--out", str(tmp_path / "g"))
    assert run_cli(*args).returncode == 0
    r = run_cli(*args)
    assert r.returncode == 0 and "nothing to do" in r.stdout


def test_registers_lists_builtins():
    r = run_cli("registers")
    assert r.returncode == 0 and all(n in r.stdout for n in ("normal", "gold", "titanium", "diamond"))


def test_parquet_output_and_safe_paths(tmp_path):
    import polars as pl

    from tracestyle.errors import InputError
    from tracestyle.jsonl import safe_child

    assert run_cli("generate", "--task", "kg", "--split", "train", "--n", "6", "--out", str(tmp_path / "g")).returncode == 0
    r = run_cli("curate", "--in", str(tmp_path / "g" / "traces.jsonl"), "--task", "kg", "--format", "parquet",
                "--out", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    df = pl.read_parquet(tmp_path / "c" / "kept.parquet")
    assert df.height == 24 and {"problem_id", "register", "text", "gold"} <= set(df.columns)
    assert safe_child(tmp_path, "a/b.jsonl") == (tmp_path / "a" / "b.jsonl").resolve()
    with pytest.raises(InputError, match="escapes the run directory"):
        safe_child(tmp_path, "../../etc/passwd")
