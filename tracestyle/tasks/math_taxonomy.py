"""Failure categories of arithmetic word problems (GSM8K, reasoning-gym's gsm_symbolic), verifiable from the data:
no answer, arithmetic error, dropped intermediate value, forgotten premise, answer overwriting, aggregation error,
relation inversion, operation omission, loop degeneration. Shared by the tasks whose problems carry reference
calculations (`steps[].calcs`); the arithmetic is read by the step checker, so a row's `arithmetic_error` and its
own `steps` verdict always agree."""

from __future__ import annotations

import re

from tracestyle.answers.arithmetic import check_steps, evaluate
from tracestyle.answers.numbers import all_numbers, numbers_equal, parse_number
from tracestyle.answers.repetition import is_loop

_INVERT = str.maketrans({"+": "-", "-": "+", "*": "/", "/": "*"})
_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
          "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30, "fifty": 50, "hundred": 100}


def question_numbers(question: str) -> list[float]:
    nums = [n for n in all_numbers(question) if n != 1.0]
    nums += [float(v) for w, v in _WORDS.items() if re.search(rf"\b{w}\b", question, re.IGNORECASE)]
    return nums


def arithmetic_wrong(row: dict) -> bool:
    """The row's own step verdict (score() records it), or the step checker on its output."""
    if isinstance(row.get("steps_valid"), bool):
        return not row["steps_valid"]
    return not check_steps(row["output"]).valid


def numeric_category(row: dict, problem: dict) -> str:
    """The first matching cause, ordered from most to least specific."""
    text, gold = row["output"], parse_number(str(problem["gold"]))
    if row.get("correct"):
        return "correct"
    if is_loop(text):
        return "loop_degeneration"
    if row.get("verdict") == "no_answer":
        return "no_answer"
    if arithmetic_wrong(row):
        return "arithmetic_error"
    nums = all_numbers(text)

    def seen(v: float) -> bool:
        return any(numbers_equal(v, n) for n in nums)

    final = parse_number(row.get("extracted") or "")
    if seen(gold) and not numbers_equal(final, gold):
        return "answer_overwriting"
    refs = [parse_number(c["result"]) for s in problem.get("steps", []) for c in s["calcs"]]
    refs = [r for r in refs if r is not None]
    inter = refs[:-1]
    for s in problem.get("steps", []):
        for c in s["calcs"]:
            # the inverse operations on the reference operands ("more" read as "less"), and not the right value
            wrong = evaluate(c["expr"].translate(_INVERT))
            right = parse_number(c["result"])
            if wrong is not None and right is not None and not numbers_equal(wrong, right) and seen(wrong) \
                    and not seen(right):
                return "relation_inversion"
    present = [r for r in inter if seen(r)]
    if inter and len(present) == len(inter):
        return "aggregation_error"   # every reference intermediate is there; the final combination is wrong
    q_nums = question_numbers(problem.get("question", ""))
    missing_q = [q for q in q_nums if not seen(q)]
    if missing_q and len(missing_q) < len(q_nums):
        return "forgotten_premise"   # some given quantities are used, at least one never appears
    if present:
        return "dropped_intermediate"
    return "operation_omission"
