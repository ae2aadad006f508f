"""Corrupted traces: deterministic from the seed, the final answer still right, each kind doing what it says, on
real GSM8K template traces and KG traces."""

import json
from collections import Counter

import pytest

from tracestyle.answers.arithmetic import check_steps
from tracestyle.curate.corrupt import KINDS, corrupt_row
from tracestyle.curate.teachers.template import template_trace
from tracestyle.prompts import load_registers
from tracestyle.tasks import get_task, score, task_of
from tracestyle.tasks.gsm8k.source import load_gsm8k


def _rows(problems, regs):
    return [{"problem_id": p["id"], "register": name, "text": template_trace(p, reg), "gold": p["gold"],
             "problem": p} for p in problems for name, reg in regs.items()]


@pytest.fixture(scope="module")
def math_rows(gsm8k_dir):
    return _rows(load_gsm8k("train", gsm8k_dir, 60), load_registers())


@pytest.fixture(scope="module")
def kg_rows():
    probs = get_task("kg").load_problems(split="train", n=40, seed=3, options={"kg": "devops",
                                                                              "train_hops": (2, 3)})
    return _rows(probs, load_registers())


def test_unknown_kind_is_refused(math_rows):
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt_row(math_rows[0], "typo", 0)


@pytest.mark.parametrize("kind", ["wrong_value", "wrong_value_propagated", "shuffle_steps", "delete_step"])
def test_math_corruptions_keep_the_answer_and_are_deterministic(math_rows, kind):
    done = 0
    for r in math_rows:
        a, b = corrupt_row(r, kind, 7), corrupt_row(r, kind, 7)
        assert a == b, "the same seed gives the same corruption"
        if a is None:
            continue
        done += 1
        assert a["text"] != r["text"] and a["corruption"]["kind"] == kind
        assert task_of(r["problem"]).check_answer(r["problem"], a["text"]).ok, (kind, a["text"])
        if kind.startswith("wrong_value"):
            assert not check_steps(a["text"]).valid
        if kind == "shuffle_steps":
            assert sorted(a["text"].split()) == sorted(r["text"].split())
        if kind == "delete_step":
            assert a["corruption"]["deleted"] and len(a["text"]) < len(r["text"])
            assert a["corruption"]["deleted"] not in a["text"]
    assert done >= 0.8 * len(math_rows), (kind, done)
    seeds = {corrupt_row(r, kind, s)["text"] for r in math_rows[:40] for s in (1, 2, 3) if corrupt_row(r, kind, s)}
    assert len(seeds) > 40, "other seeds give other corruptions"


def test_propagated_wrong_value_is_carried_to_later_steps(math_rows):
    carried = 0
    for r in math_rows:
        a, b = corrupt_row(r, "wrong_value", 0), corrupt_row(r, "wrong_value_propagated", 0)
        if a is None:
            continue
        assert a["corruption"]["corrupted"] == b["corruption"]["corrupted"]
        carried += a["text"].count(a["corruption"]["corrupted"]) < b["text"].count(b["corruption"]["corrupted"])
    assert carried >= 20, carried


@pytest.mark.parametrize("kind", ["shuffle_steps", "delete_step", "wrong_edge"])
def test_kg_corruptions_keep_the_answer(kg_rows, kind):
    done, invalid = 0, 0
    for r in kg_rows:
        a = corrupt_row(r, kind, 0)
        if a is None:
            continue
        done += 1
        s = score(r["problem"], a["text"])
        assert s["correct"], (kind, a["text"])
        invalid += not s["path_valid"]
    assert done >= 0.5 * len(kg_rows), (kind, done)
    if kind == "wrong_edge":
        assert invalid >= 0.9 * done, "a wrong edge makes the stated path invalid"


def test_kinds_that_do_not_apply_are_skipped(math_rows, kg_rows):
    assert all(corrupt_row(r, "wrong_edge", 0) is None for r in math_rows[:20])
    assert all(corrupt_row(r, "wrong_value", 0) is None for r in kg_rows[:20])
    assert set(KINDS) == {"wrong_value", "wrong_value_propagated", "shuffle_steps", "delete_step", "wrong_edge"}
    assert Counter(json.dumps(corrupt_row(r, "shuffle_steps", 0) is None) for r in math_rows)["false"] > 0
