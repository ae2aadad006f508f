import pytest

from tracestyle.errors import InputError
from tracestyle.tasks.gsm8k.source import load_gsm8k, parse_solution


def test_loads_real_splits_with_steps(gsm8k_dir):
    test = load_gsm8k("test", gsm8k_dir)
    train = load_gsm8k("train", gsm8k_dir, n=50)
    assert len(test) == 1319 and len(train) == 50
    p = test[0]
    assert p["gold"] == "18" and p["split"] == "eval" and p["id"] == "gsm8k-test-0"
    assert p["steps"][0]["calcs"] == [{"expr": "16-3-4", "result": "9"}]
    assert p["difficulty"]["steps"] == 2
    assert all(q["difficulty"]["steps"] >= 1 for q in test)
    assert {q["split"] for q in train} == {"train"}


def test_parse_solution_strips_annotations():
    steps, final = parse_solution("He pays 2*3=<<2*3=6>>6 dollars.\n#### 6")
    assert steps == [{"text": "He pays 2*3=6 dollars.", "calcs": [{"expr": "2*3", "result": "6"}]}]
    assert final == "6"


def test_bad_split_and_missing_answer(tmp_path):
    with pytest.raises(InputError, match="split"):
        load_gsm8k("dev")
    bad = tmp_path / "test.jsonl"
    bad.write_text('{"question": "q?", "answer": "no final line"}\n')
    with pytest.raises(InputError, match=r"test.jsonl:1: field 'answer'"):
        load_gsm8k("test", tmp_path)
