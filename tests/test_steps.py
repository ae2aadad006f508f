"""Step verification on real traces: the checker's statements, GSM8K's own solutions, planted errors, the steps
filter in curation and the step check in evaluation."""

import json
import re

import pytest

from tracestyle.answers.arithmetic import check_steps, line_statements
from tracestyle.curate.corrupt import corrupt_row
from tracestyle.curate.teachers.template import template_trace
from tracestyle.prompts import load_registers
from tracestyle.tasks import score
from tracestyle.tasks.gsm8k.source import load_gsm8k

from conftest import run_cli

RIGHT = ["16 - 3 - 4 = 9", "9 * 2 = $18", "3 x 4 = 12 cookies", "half of 10 is 5", "20% of 40 is 8",
         "20 percent of 40 is 8", "1,200 / 4 equals 300", "2 * 3 = 6 * 4 = 24", "10 / 3 = 3.33",
         "8 / 40 * 100 = 20%", r"\( 3 \times 4 = 12 \)", r"\frac{12}{4} = 3", "She pays $5/hour * 8 hours = $40",
         "3 bags x 4 cookies = 12 cookies", "1 1/2 * 4 = 6", "(3 + 4) * 2 = 14", "3 times 4 is 12",
         "12 divided by 3 is 4", "It costs 3 * $1,250 = $3,750.", "16 − 3 − 4 = 9", "twice 15 is 30",
         "600 x 30 = 18 000 watts", "8 * 2 + 4 * 5 + 12 * 4 = 16 + 20 + 48 = 84", "25 / 1/3 = 75",
         "50 stickers / 3 friends = 16 stickers each, with 2 remaining", "15 / 90 * 100% = 16.66%"]
WRONG = ["16 - 3 - 4 = 10", "9 * 2 = $19", "3 x 4 = 13 cookies", "half of 10 is 6", "20% of 40 is 80",
         "1,200 / 4 equals 30", "2 * 3 = 7 * 4 = 28", "So she has 5 + 3 = 8, and 8 * 2 = 17 apples."]
NOT_STATEMENTS = ["all 2 steps are done", "x + 5 = 10", "2x + 3 = 7", "C1: X3 = 5 answers G", "Step 2 is 5",
                  "There are 3 boxes and the price is 5", "half of the money is 5", "Final answer: 10",
                  "Since 3/4 is equal to $15, then", "The numbers are 1, 2, 3", "It is 6:00 = dawn"]


@pytest.mark.parametrize("s", RIGHT)
def test_right_statements_are_checked_and_pass(s):
    st = line_statements(s)
    assert st and all(ok for *_, ok in st), st


@pytest.mark.parametrize("s", WRONG)
def test_wrong_statements_are_found(s):
    assert any(not ok for *_, ok in line_statements(s)), line_statements(s)


@pytest.mark.parametrize("s", NOT_STATEMENTS)
def test_prose_is_never_an_error(s):
    c = check_steps(s)
    assert c.valid and c.checked == 0, c


def test_first_error_line_is_the_line_index_in_text():
    text = "Let's solve this step by step.\nShe has 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $19.\n#### 18"
    c = check_steps(text)
    assert (c.valid, c.first_error_line, c.checked) == (False, 2, 2)
    assert c.public()["first_error"] == {"statement": "9 * 2 = 19", "stated": 19, "computed": 18}


def _strip_annotations(solution: str) -> str:
    return re.sub(r"<<[^>]*>>", "", solution)


@pytest.fixture(scope="module")
def gsm8k_all(gsm8k_dir):
    return load_gsm8k("train", gsm8k_dir) + load_gsm8k("test", gsm8k_dir)


def _template_traces_fail_only_where_gsm8k_does(problems):
    """A template trace fails only where GSM8K's own solution states a wrong result (the renderer adds no error),
    and that happens in under 0.5% of problems."""
    regs = load_registers()
    flagged = set()
    for p in problems:
        own = {(e.stated, e.computed) for e in check_steps(_strip_annotations(p["solution"])).errors}
        for name, reg in regs.items():
            c = check_steps(template_trace(p, reg))
            if not c.valid:
                assert {(e.stated, e.computed) for e in c.errors} <= own, (p["id"], name, c.errors, own)
                flagged.add(p["id"])
    assert len(flagged) / len(problems) < 0.005, len(flagged)


def test_template_traces_pass_except_the_datasets_own_errors(gsm8k_all):
    """Every 8th GSM8K problem (train and test) in all four registers; `make nightly` runs all 8,792."""
    _template_traces_fail_only_where_gsm8k_does(gsm8k_all[::8])


@pytest.mark.nightly
def test_template_traces_of_every_gsm8k_problem(gsm8k_all):
    _template_traces_fail_only_where_gsm8k_does(gsm8k_all)


def test_coverage_of_the_calculator_annotations(gsm8k_all):
    reg = load_registers(["normal"])["normal"]
    sample = gsm8k_all[::10]
    calcs = sum(len(s["calcs"]) for p in sample for s in p["steps"])
    checked = sum(check_steps(template_trace(p, reg)).checked for p in sample)
    assert checked >= 0.95 * calcs, (checked, calcs)


def test_planted_wrong_results_are_found_at_their_line(gsm8k_all):
    regs = load_registers()
    found = total = 0
    for p in gsm8k_all[:400]:
        for name, reg in regs.items():
            text = template_trace(p, reg)
            if not check_steps(text).valid:
                continue
            row = {"problem_id": p["id"], "register": name, "text": text, "gold": p["gold"], "problem": p}
            for kind in ("wrong_value", "wrong_value_propagated"):
                bad = corrupt_row(row, kind, 0)
                if bad is None:
                    continue
                total += 1
                c = check_steps(bad["text"])
                found += (not c.valid) and c.first_error_line == bad["corruption"]["line"]
    assert total > 1500 and found / total >= 0.98, (found, total)


def test_steps_filter_in_curation(tmp_path, gsm8k_dir):
    p = load_gsm8k("train", gsm8k_dir, 6)
    reg = load_registers(["normal"])["normal"]
    rows = []
    for prob in p:
        text = template_trace(prob, reg)
        rows.append({"problem_id": prob["id"], "question": prob["question"], "gold": prob["gold"], "text": text,
                     "register": "normal", "problem": prob})
    bad = corrupt_row(rows[0], "wrong_value", 1)
    rows.append({**bad, "problem_id": "planted"})
    src = tmp_path / "traces.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run_cli("curate", "--in", str(src), "--task", "gsm8k", "--filters", "correct,steps", "--out",
                str(tmp_path / "cur"))
    assert r.returncode == 0, r.stderr
    kept = [json.loads(x) for x in (tmp_path / "cur" / "kept.jsonl").read_text().splitlines()]
    dropped = [json.loads(x) for x in (tmp_path / "cur" / "dropped.jsonl").read_text().splitlines()]
    assert [d["problem_id"] for d in dropped] == ["planted"] and len(kept) == 6
    d = dropped[0]
    assert d["reason"].startswith("steps:") and d["steps"]["valid"] is False
    assert d["steps"]["first_error_line"] == bad["corruption"]["line"] and d["steps"]["checked"] >= 2
    assert d["checks"]["correct"]["ok"], "the planted error leaves the final answer right"
    for k in kept:
        assert set(k["steps"]) == {"valid", "first_error_line", "checked"} and k["steps"]["valid"]
        assert k["steps"]["first_error_line"] is None and k["steps"]["checked"] >= 1


def test_eval_scoring_carries_the_step_check(gsm8k_dir):
    prob = load_gsm8k("test", gsm8k_dir, 1)[0]
    good = score(prob, "Janet gets 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18")
    assert good["correct"] and good["steps_valid"] and good["steps"]["checked"] == 2
    lucky = score(prob, "Janet gets 16 - 3 - 4 = 8 eggs.\nShe makes 9 * 2 = $18.\n#### 18")
    assert lucky["correct"] and not lucky["steps_valid"] and lucky["steps"]["first_error_line"] == 0


@pytest.mark.parametrize("text,valid,checked", [
    ("(6 + 2) * 3 = 24", True, 1), ("(6 + 2) * 3 = 32", False, 1),
    ("8 - -3 * 2 = 14", True, 1), ("8 - -3 * 2 = 10", False, 1),
    ("B = (7 - 12 + 4) = (-5 + 4) = -1", True, 2),
    ("B = (7 - 12 + 4) = (-4 + 4) = 0", False, 2),          # the first link is the wrong one
    ("2 * (3 + 4) = 14 = 7 * 2", True, 2), ("2 * (3 + 4) = 14 = 7 * 3", False, 2),
    ("C = 3 * 4 = 12, so C + 5 = 17", True, 2), ("C = 3 * 4 = 12, so C + 5 = 18", False, 2),
    ("A = 5\nB = A * 3 = 15\nA + B = 20", True, 2), ("A = 5\nB = A * 3 = 15\nA + B = 21", False, 2),
    ("total_cost = 3 * 4 = 12\ntotal_cost / 2 = 6", True, 2),
    ("So -2 - 4 - (50 + 23) = -79.", True, 1), ("So -2 - 4 - (50 + 23) = -82.", False, 1),
])
def test_structured_expressions(text, valid, checked):
    c = check_steps(text)
    assert (c.valid, c.checked) == (valid, checked), c


def test_structured_expression_recall_and_false_alarms():
    """Planted errors in generated structured arithmetic (brackets, precedence, negatives, chains of expressions,
    named quantities): found at their line; the same traces without the error pass. bench/step_checker.py prints
    the figures (README)."""
    from structured_steps import cases

    cs = cases(1000)
    planted = [(t, line) for t, line, p in cs if p]
    found = sum(not check_steps(t).valid and check_steps(t).first_error_line == line for t, line in planted)
    false_alarms = sum(not check_steps(t).valid for t, _, p in cs if not p)
    assert found / len(planted) >= 0.99 and false_alarms == 0, (found, len(planted), false_alarms)
