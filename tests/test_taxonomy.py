"""Every failure category on hand-written traces that contain that failure."""

import pytest

from tracestyle.reports.stats import bootstrap_ci, chi2_2x2, mcnemar
from tracestyle.reports.taxonomy import categorize
from tracestyle.tasks import task_of
from tracestyle.tasks.gsm8k.source import problem_from_row
from tracestyle.tasks.kg.path import verify_kg_path
from tracestyle.tasks.kg.questions import generate_kg_problems
from tracestyle.tasks.kg.refs import get_kg

# GSM8K test problem 0 (Janet's ducks): 16 - 3 - 4 = 9 eggs sold, 9 * 2 = 18 dollars
JANET = problem_from_row({
    "question": "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins "
                "for her friends every day with four. She sells the remainder at the farmers' market daily for $2 "
                "per fresh duck egg. How much in dollars does she make every day at the farmers' market?",
    "answer": "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day at "
              "the farmer’s market.\n#### 18"}, 0, "eval", "test")
# three steps: 3 * 4 = 12, 12 + 5 = 17, 17 * 2 = 34
THREE = problem_from_row({
    "question": "A box holds 4 pens and there are 3 boxes. Tom adds 5 pens. Then he doubles the pile by 2. "
                "How many pens?",
    "answer": "3 * 4 = <<3*4=12>>12\n12 + 5 = <<12+5=17>>17\n17 * 2 = <<17*2=34>>34\n#### 34"}, 1, "eval", "test")


def _cat(problem, text):
    v = task_of(problem).check_answer(problem, text)
    row = {"output": text, "correct": v.ok, "verdict": v.reason, "extracted": v.extracted}
    return categorize(row, problem)


@pytest.mark.parametrize("problem,text,category", [
    (JANET, "Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18", "correct"),
    (JANET, "I do not know.", "no_answer"),
    (JANET, "Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $16.\n#### 16", "arithmetic_error"),
    (JANET, "She sells 9 eggs and makes 18 dollars. But wait, she also sells 4 more.\n#### 26", "answer_overwriting"),
    (JANET, "Janet sells 16 + 3 + 4 = 23 eggs.\n23 times 2 gives 46.\n#### 46", "relation_inversion"),
    (THREE, "3 * 4 = 12 pens.\n12 + 5 = 17 pens.\nSo there are 17 + 2 = 19.\n#### 19", "aggregation_error"),
    (JANET, "She has 16 eggs and sells them for $2 each: 16 * 2 = 32.\n#### 32", "forgotten_premise"),
    (THREE, "3 * 4 = 12 pens. He adds 5 pens, then doubles: 12 * 2 = 24, plus 5 is 29.\n#### 29",
     "dropped_intermediate"),
    (JANET, "The answer is 7.", "operation_omission"),
    (JANET, ("She sells eggs and she sells eggs and she sells eggs and she sells eggs. " * 6) + "#### 5",
     "loop_degeneration"),
])
def test_gsm8k_categories(problem, text, category):
    assert _cat(problem, text) == category


@pytest.fixture(scope="module")
def kgp():
    p = next(p for p in generate_kg_problems("devops", "eval", 50, 0) if not any(h["inverse"] for h in p["path"]))
    return p, get_kg("devops")


def _kg_cat(p, kg, text):
    v = task_of(p).check_answer(p, text)
    pv = verify_kg_path(text, p, kg)
    row = {"output": text, "correct": v.ok, "verdict": v.reason, "extracted": v.extracted,
           "path_valid": pv.ok, "path": {"reason": pv.reason, **pv.details}}
    return categorize(row, p)


def test_kg_categories(kgp):
    p, kg = kgp
    hops = p["path"]
    good = "\n".join(f"{h['from']} {h['phrase']} {h['to']}." for h in hops) + f"\n#### {p['answer_entity']}"
    assert _kg_cat(p, kg, good) == "correct"
    h0 = hops[0]
    inverted = f"{h0['to']} {h0['phrase']} {h0['from']}.\n#### {h0['from']}"
    assert _kg_cat(p, kg, inverted) == "inverted_relation"
    wrong_tail = next(e for e in kg.of_type(kg.entities[h0["to"]]) if e != h0["to"])
    assert _kg_cat(p, kg, f"{h0['from']} {h0['phrase']} {wrong_tail}.\n#### {wrong_tail}") == "hallucinated_edge"
    assert _kg_cat(p, kg, "I cannot tell.") == "no_answer"
    stop_short = "\n".join(f"{h['from']} {h['phrase']} {h['to']}." for h in hops[:2]) + f"\n#### {hops[1]['to']}"
    assert _kg_cat(p, kg, stop_short) == "skipped_hop"
    other = next(e for e in kg.of_type(p["answer_type"]) if e != p["answer_entity"] and
                 e not in {h["to"] for h in hops})
    assert _kg_cat(p, kg, f"#### {other}") == "wrong_entity"
    gap = f"{h0['from']} {h0['phrase']} {h0['to']}.\n{hops[2]['from']} {hops[2]['phrase']} {hops[2]['to']}.\n" \
          f"#### {hops[2]['to']}"
    assert _kg_cat(p, kg, gap) == "broken_chain"
    loop = (f"{h0['from']} {h0['phrase']} {h0['to']}. " * 12) + f"\n#### {h0['to']}"
    assert _kg_cat(p, kg, loop) == "loop"


def test_stats():
    acc, lo, hi = bootstrap_ci([True] * 30 + [False] * 70)
    assert acc == pytest.approx(0.3) and lo < 0.3 < hi and hi - lo < 0.25
    acc2, lo2, hi2 = bootstrap_ci([[True] * 30 + [False] * 70, [True] * 60 + [False] * 40])
    assert acc2 == pytest.approx(0.45) and (hi2 - lo2) > (hi - lo), "seed variance widens the interval"
    m = mcnemar([False] * 20 + [True] * 10, [True] * 20 + [True] * 10)
    assert m["b_only"] == 20 and m["p_value"] < 1e-4
    assert mcnemar([True, False], [True, False])["p_value"] == 1.0
    t = chi2_2x2([True] * 50 + [False] * 50, [True] * 45 + [False] * 5 + [True] * 5 + [False] * 45)
    assert t["table"] == [[45, 5], [5, 45]] and t["p_value"] < 1e-6


def test_arithmetic_error_agrees_with_the_rows_own_step_check(gsm8k_dir):
    """One arithmetic reader: a wrong answer is an arithmetic_error exactly when the row's `steps` verdict (the
    step checker, as curation and evaluation record it) found a wrong statement, also for parenthesised and
    chained expressions; rows from before steps were recorded are checked the same way."""
    from test_steps import RIGHT, WRONG

    from tracestyle.tasks import score
    from tracestyle.tasks.gsm8k.source import load_gsm8k

    prob = load_gsm8k("test", gsm8k_dir, 1)[0]
    for stmt in RIGHT + WRONG + ["(6 + 2) * 3 = 24", "(6 + 2) * 3 = 18", "2 * (3 + 4) = 14", "2 * (3 + 4) = 10"]:
        out = f"{stmt}\n#### 7"
        row = {"output": out, **score(prob, out)}
        assert not row["correct"] and isinstance(row["steps_valid"], bool)
        assert (categorize(row, prob) == "arithmetic_error") == (not row["steps_valid"]), (stmt, row["steps"])
        bare = {k: v for k, v in row.items() if k not in ("steps_valid", "steps")}
        assert categorize(bare, prob) == categorize(row, prob), stmt
