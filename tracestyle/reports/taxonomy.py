"""Rule-based failure categories for evaluated outputs, verifiable from the data.

KG: hallucinated edge, inverted relation, skipped hop (shortcut), wrong entity, broken chain, no answer, loop.
GSM8K: no answer, arithmetic error, dropped intermediate value, forgotten premise, answer overwriting,
aggregation error, relation inversion, operation omission, loop degeneration.
"""

from __future__ import annotations

import re

from tracestyle.curate.numbers import all_numbers, numbers_equal, parse_number
from tracestyle.distill.rsft import repetition_penalty

_EQ = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)\s*([-+*/x×÷])\s*(-?\d[\d,]*(?:\.\d+)?)\s*=\s*\$?(-?\d[\d,]*(?:\.\d+)?)")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "x": lambda a, b: a * b,
        "×": lambda a, b: a * b, "/": lambda a, b: a / b if b else None, "÷": lambda a, b: a / b if b else None}
_INVERSE = {"+": "-", "-": "+", "*": "/", "/": "*"}


def is_loop(text: str) -> bool:
    return len(text.split()) >= 24 and repetition_penalty(text) >= 0.5


def kg_category(row: dict, problem: dict) -> str:
    if row.get("correct"):
        return "correct"
    if is_loop(row["output"]):
        return "loop"
    path = row.get("path") or {}
    inv = [h.get("kind") for h in path.get("invalid_hops", [])]
    if "inverted" in inv:
        return "inverted_relation"
    if "hallucinated" in inv:
        return "hallucinated_edge"
    if row.get("verdict") == "no_answer" or row.get("extracted") in (None, ""):
        return "no_answer"
    gold_edges = len(problem.get("path", []))
    if path.get("connected") is False and path.get("valid_hops", 0) > 0:
        if 0 < path.get("valid_hops", 0) < gold_edges and _reached_intermediate(row, problem):
            return "skipped_hop"
        return "broken_chain"
    return "wrong_entity"


def _reached_intermediate(row: dict, problem: dict) -> bool:
    """The answer given is an entity on the gold path before its end: the chain stopped short or jumped."""
    ans = (row.get("extracted") or "").strip().lower()
    mids = [h["to"].lower() for h in problem.get("path", [])[:-1]]
    return ans in mids


def arithmetic_errors(text: str) -> list[str]:
    bad = []
    for a, op, b, c in _EQ.findall(text):
        x, y, z = (parse_number(v) for v in (a, b, c))
        if x is None or y is None or z is None:
            continue
        r = _OPS[op](x, y)
        if r is not None and not numbers_equal(r, z, 1e-4):
            bad.append(f"{a} {op} {b} = {c}")
    return bad


def gsm8k_category(row: dict, problem: dict) -> str:
    """The first matching cause, ordered from most to least specific."""
    text, gold = row["output"], parse_number(str(problem["gold"]))
    if row.get("correct"):
        return "correct"
    if is_loop(text):
        return "loop_degeneration"
    if row.get("verdict") == "no_answer":
        return "no_answer"
    if arithmetic_errors(text):
        return "arithmetic_error"
    nums = all_numbers(text)
    final = parse_number(row.get("extracted") or "")
    if any(numbers_equal(n, gold) for n in nums) and not numbers_equal(final, gold):
        return "answer_overwriting"
    refs = [parse_number(c["result"]) for s in problem.get("steps", []) for c in s["calcs"]]
    refs = [r for r in refs if r is not None]
    inter = refs[:-1]
    for s in problem.get("steps", []):
        for c in s["calcs"]:
            m = re.fullmatch(r"\s*(-?[\d.]+)\s*([-+*/])\s*(-?[\d.]+)\s*", c["expr"])
            if m and m.group(2) in _INVERSE:
                x, y = float(m.group(1)), float(m.group(3))
                wrong = _OPS[_INVERSE[m.group(2)]](x, y)
                if wrong is not None and any(numbers_equal(n, wrong) for n in nums) and \
                        not any(numbers_equal(n, parse_number(c["result"])) for n in nums):
                    return "relation_inversion"
    def seen(v: float) -> bool:
        return any(numbers_equal(v, n) for n in nums)

    present = [r for r in inter if seen(r)]
    if inter and len(present) == len(inter):
        return "aggregation_error"   # every reference intermediate is there; the final combination is wrong
    q_nums = [q for q in all_numbers(problem.get("question", "")) if q != 1.0]
    missing_q = [q for q in q_nums if not seen(q)]
    if missing_q and len(missing_q) < len(q_nums):
        return "forgotten_premise"   # some given quantities are used, at least one never appears
    if present:
        return "dropped_intermediate"
    return "operation_omission"


def categorize(row: dict, problem: dict) -> str:
    return kg_category(row, problem) if problem.get("task") == "kg" else gsm8k_category(row, problem)
