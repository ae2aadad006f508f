"""Decontamination: word n-gram overlap with the eval problems and the GSM8K test set, on a planted set."""

import json

import pytest

from tracestyle.curate.decontam import NgramIndex, reference_docs
from tracestyle.curate.teachers.template import template_trace
from tracestyle.prompts import load_registers
from tracestyle.tasks.gsm8k.source import load_gsm8k

from conftest import run_cli


def test_template_ngrams_are_not_contamination():
    docs = [(f"e{i}", f"Start at item {i}. Follow these links in order, one after the other, until you reach the "
                      f"end of the chain and name it {i}.") for i in range(200)]
    idx = NgramIndex.build(docs, n=8)
    assert idx.template_ngrams > 0
    assert idx.first_hit("follow these links in order one after the other until you reach the end") is None
    assert idx.first_hit("Start at item 17. Follow these links in") == ("start at item 17 follow these links in", "e17")
    with pytest.raises(ValueError):
        NgramIndex.build(docs, n=5)


def test_planted_contamination_is_dropped_with_its_ngram(tmp_path, gsm8k_dir):
    train, test = load_gsm8k("train", gsm8k_dir, 40), load_gsm8k("test", gsm8k_dir)
    reg = load_registers(["normal"])["normal"]
    rows = [{"problem_id": p["id"], "question": p["question"], "gold": p["gold"], "register": "normal",
             "text": template_trace(p, reg)} for p in train]
    # contaminated on purpose: 5 test questions as training rows, 5 traces quoting a test solution's sentence
    planted = set()
    for i, t in enumerate(test[100:105]):
        rows.append({"problem_id": f"q{i}", "question": t["question"], "gold": t["gold"], "register": "normal",
                     "text": template_trace(t, reg)})
        planted.add(f"q{i}")
    for i, t in enumerate(test[200:205]):
        steps = t["solution"].split("####")[0].strip()
        r = dict(rows[i])
        rows.append({**r, "problem_id": f"s{i}", "text": "Recall: " + steps + "\n" + r["text"]})
        planted.add(f"s{i}")
    src = tmp_path / "traces.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "cur"
    r = run_cli("curate", "--in", str(src), "--task", "gsm8k", "--filters", "correct,decontam",
                "--decontam-gsm8k", str(gsm8k_dir), "--out", str(out))
    assert r.returncode == 0, r.stderr
    dropped = [json.loads(x) for x in (out / "dropped.jsonl").read_text().splitlines()]
    # gsm8k-train-20 is a real near-duplicate of gsm8k-test-632 in GSM8K itself ("bought stamps at the post office,
    # some of the stamps had a snowflake ..."): found, not planted
    assert {d["problem_id"] for d in dropped} == planted | {"gsm8k-train-20"}
    from tracestyle.curate.decontam import words
    for d in dropped:
        gram = d["reason"].removeprefix("decontam:")
        assert len(gram.split()) == 13 and d["checks"]["decontam"]["source"].startswith("gsm8k-test-")
        assert gram in " ".join(words(d["question"] + " " + d["text"]))
    man = json.loads((out / "manifest.json").read_text())
    assert man["counts"]["decontam"]["hits"] == 11 and man["counts"]["decontam"]["gsm8k_test"] == 1319
    st = run_cli("stats", str(out), "--json")
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["registers"]["normal"]["drop_reasons"] == {"decontam": 11}


def test_bad_ngram_size_is_an_input_error(tmp_path, gsm8k_dir):
    src = tmp_path / "t.jsonl"
    src.write_text(json.dumps({"question": "q", "gold": "1", "text": "#### 1"}) + "\n")
    r = run_cli("curate", "--in", str(src), "--task", "gsm8k", "--filters", "decontam", "--decontam-n", "4",
                "--decontam-gsm8k", str(gsm8k_dir), "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "decontam-n" in r.stderr and not (tmp_path / "c").exists()


def test_reference_docs_hold_questions_and_solutions(gsm8k_dir):
    test = load_gsm8k("test", gsm8k_dir, 3)
    docs = reference_docs([{"id": "e1", "question": "What is it?"}], test)
    assert docs[0] == ("e1", "What is it?") and len(docs) == 1 + 2 * 3
