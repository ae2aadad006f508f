"""Rule-based failure categories for evaluated outputs, verifiable from the data.

KG: hallucinated edge, inverted relation, skipped hop (shortcut), wrong entity, broken chain, no answer, loop.
GSM8K: no answer, arithmetic error, dropped intermediate value, forgotten premise, answer overwriting,
aggregation error, relation inversion, operation omission, loop degeneration.
reasoning-gym: taxonomy_rg.py.
"""

from __future__ import annotations

import ast
import operator
import re

from tracestyle.answers.numbers import all_numbers, numbers_equal, parse_number
from tracestyle.answers.repetition import is_loop
from tracestyle.registry import Registry
from tracestyle.reports.taxonomy_rg import rg_category
from tracestyle.tasks.kg.path import reachable

_NUM = r"\$?\(?-?\d[\d,]*(?:\.\d+)?\)?"
# a whole stated computation "a op b op c = d", so "16 + 3 + 4 = 23" is not misread as "4 = 23"
_EQ = re.compile(rf"((?:{_NUM}\s*[-+*/x×÷]\s*)+{_NUM})\s*=\s*\$?(-?\d[\d,]*(?:\.\d+)?)")
_INVERT = str.maketrans({"+": "-", "-": "+", "*": "/", "/": "*"})
_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
          "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30, "fifty": 50, "hundred": 100}


def safe_eval(expr: str) -> float | None:
    """Arithmetic only (numbers, + - * /, parentheses); anything else is None, never executed."""
    e = expr.replace(",", "").replace("$", "").replace("×", "*").replace("÷", "/")
    e = re.sub(r"(?<=\d)\s*x\s*(?=[\d(])", "*", e)
    try:
        tree = ast.parse(e, mode="eval")
    except SyntaxError:
        return None

    def ev(n):
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)):
            return float(n.value)
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.BinOp) and type(n.op) in _BIN:
            return _BIN[type(n.op)](ev(n.left), ev(n.right))
        raise ValueError("not arithmetic")
    try:
        return ev(tree)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def question_numbers(question: str) -> list[float]:
    nums = [n for n in all_numbers(question) if n != 1.0]
    nums += [float(v) for w, v in _WORDS.items() if re.search(rf"\b{w}\b", question, re.IGNORECASE)]
    return nums


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
    ans = (row.get("extracted") or "").strip().lower()
    if ans in {a.lower() for a in problem.get("answers") or []}:
        return "wrong_entity"   # named a member of the answer set but not accepted (e.g. all were required)
    mids = {h["to"].lower() for h in problem.get("path", [])[:-1]}
    valid = [tuple(v) for v in path.get("valid", [])]
    reach = {e.lower() for e in reachable(problem["start"], valid + [v[::-1] for v in valid])}
    if ans in mids and ans in reach:
        return "skipped_hop"    # a sound chain that stopped short of the last hops (or jumped over them)
    if path.get("valid_hops", 0) > 0 and ans not in reach:
        return "broken_chain"   # valid hops that do not connect the start to the answer given
    return "wrong_entity"


def arithmetic_errors(text: str) -> list[str]:
    bad = []
    for lhs, rhs in _EQ.findall(text):
        r, z = safe_eval(lhs), parse_number(rhs)
        if r is not None and z is not None and not numbers_equal(r, z, 1e-4):
            bad.append(f"{lhs} = {rhs}")
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
            wrong = safe_eval(c["expr"].translate(_INVERT))
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


CATEGORIZERS: Registry = Registry("failure taxonomy")
CATEGORIZERS.add("kg", kg_category)
CATEGORIZERS.add("gsm8k", gsm8k_category)
CATEGORIZERS.add("reasoning_gym", lambda row, problem: rg_category(row, problem, gsm8k_category))


def categorize(row: dict, problem: dict) -> str:
    """The rule-based failure category of an evaluated row ("correct" when it is right)."""
    return CATEGORIZERS.get(problem.get("task") or "gsm8k")(row, problem)
