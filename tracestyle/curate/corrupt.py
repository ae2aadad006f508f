"""Corrupted traces on purpose, the final answer left right: what do wrong steps teach a student?

Kinds (deterministic from the seed, the problem id, the register and the kind):
- wrong_value: one intermediate stated result is changed; later steps still use the right value (inconsistent).
- wrong_value_propagated: the same change, and every later use of that value in the steps carries the wrong
  value on (consistent with the error; later stated results are left as they were, so the answer stays right).
- shuffle_steps: the step units (lines, or sentences inside one paragraph) are put in another order.
- delete_step: one step unit, not the last, is removed.
- wrong_edge (KG): one intermediate entity of the path is replaced by another entity of the same type.
A step unit is a line, or a sentence inside a prose paragraph, that states an arithmetic relation (math) or names
two or more KG entities (KG). A row a kind cannot apply to (too few steps, no intermediate value) is skipped and
counted, never passed on clean under a corrupted name.
"""

from __future__ import annotations

import random
import re

from tracestyle.answers.arithmetic import line_statements
from tracestyle.answers.numbers import parse_number
from tracestyle.tasks import task_of

SHARED = ("wrong_value", "wrong_value_propagated", "shuffle_steps", "delete_step")
KINDS = SHARED + ("wrong_edge",)     # and the kinds a task adds (Task.corrupt): KG's wrong_edge
_SENT = re.compile(r"[^.!?\n]+(?:[.!?]+(?=\s|$)|$)")
# a stated result: after "=" / "is", and not itself the start of another computation ("is 2 × $1")
_STATED = re.compile(r"(?:=|\bis\b|\bequals\b)\s*\$?\s*(-?\d+(?:,\d{3})*(?:\.\d+)?)(?!\s*[×x*/+\-^]\s*[\d$(])")


def _units(text: str, is_step) -> list[tuple[int, int]]:
    """Char spans of the step units: whole lines, or sentences where a line holds several steps."""
    spans, pos = [], 0
    for line in text.split("\n"):
        sents = [(pos + m.start(), pos + m.end()) for m in _SENT.finditer(line) if m.group().strip()]
        steps = [(a, b) for a, b in sents if is_step(text[a:b])]
        if len(steps) > 1:
            spans += [(a + len(text[a:b]) - len(text[a:b].lstrip()), b) for a, b in steps]
        elif steps and line.strip():
            spans.append((pos + len(line) - len(line.lstrip()), pos + len(line.rstrip())))
        pos += len(line) + 1
    return spans


def _answer_value(row: dict) -> float | None:
    return parse_number(str(row.get("gold", "")))


def _swap_spans(text: str, spans: list[tuple[int, int]], contents: list[str]) -> str:
    out, last = [], 0
    for (a, b), c in zip(spans, contents):
        out += [text[last:a], c]
        last = b
    return "".join(out) + text[last:]


def _wrong_number(v: float, rng: random.Random) -> float:
    if rng.random() < 0.3 and v not in (0, 1):
        return v * 10 if rng.random() < 0.5 else v / 10      # a slipped digit
    step = max(1, round(abs(v) * rng.choice([0.1, 0.2, 0.5]))) if v.is_integer() else round(abs(v) * 0.2, 2) or 1
    return v + step * rng.choice([-1, 1]) if v - step > 0 else v + step


def _fmt(v: float, like: str) -> str:
    """v written like the number it replaces: its decimals, its thousands separator."""
    decimals = len(like.split(".")[1]) if "." in like else (0 if float(v).is_integer() else 2)
    return f"{v:,.{decimals}f}" if "," in like else f"{v:.{decimals}f}"


def _wrong_value(row: dict, rng: random.Random, propagate: bool) -> tuple[str, dict] | None:
    text, answer = row["text"], _answer_value(row)
    spans = _units(text, task_of(row.get("problem") or {}).step_unit(row.get("problem") or {}))
    found = []   # (span index, match) of intermediate stated results
    for k, (a, b) in enumerate(spans[:-1]):
        results = {stated for _, stated, _, ok in line_statements(text[a:b]) if ok}
        for m in _STATED.finditer(text, a, b):
            v = parse_number(m.group(1))
            if v is not None and v in results and (answer is None or abs(v - answer) > 1e-9):
                found.append((k, m))
    if not found:
        return None
    k, m = rng.choice(found)
    old = m.group(1)
    new = _fmt(_wrong_number(parse_number(old), rng), old)
    out = text[:m.start(1)] + new + text[m.end(1):]
    if propagate:
        tail_from = m.start(1) + len(new)
        last_start = spans[-1][0] + len(new) - len(old)
        # later uses inside the steps, never the final answer's own line
        head, mid, rest = out[:tail_from], out[tail_from:last_start], out[last_start:]
        mid = re.sub(rf"(?<![\d.,]){re.escape(old)}(?![\d]|\.\d|,\d)", new, mid)
        out = head + mid + rest
    return out, {"line": text[:m.start(1)].count("\n"), "stated": old, "corrupted": new}


def _shuffle(row: dict, rng: random.Random, is_step) -> tuple[str, dict] | None:
    text = row["text"]
    spans = _units(text, is_step)
    if len(spans) < 2:
        return None
    contents = [text[a:b] for a, b in spans]
    order = list(range(len(spans)))
    while order == sorted(order):
        rng.shuffle(order)
    return _swap_spans(text, spans, [contents[i] for i in order]), {"order": order}


def _delete(row: dict, rng: random.Random, is_step) -> tuple[str, dict] | None:
    text = row["text"]
    spans = _units(text, is_step)
    if len(spans) < 2:
        return None
    k = rng.randrange(len(spans) - 1)
    a, b = spans[k]
    if b < len(text) and text[b] == "\n" and (a == 0 or text[a - 1] == "\n"):
        b += 1                                          # a whole line goes with its newline
    elif b < len(text) and text[b] == " ":
        b += 1
    return text[:a] + text[b:], {"deleted": text[a:b].strip()}


def corrupt_row(row: dict, kind: str, seed: int) -> dict | None:
    """The row with its text corrupted and a "corruption" record, or None where the kind does not apply."""
    if kind not in KINDS:
        raise ValueError(f"unknown corruption '{kind}' (known: {', '.join(KINDS)})")
    # both wrong_value kinds draw the same change, so the two differ only in what later steps do with it
    key = "wrong_value" if kind.startswith("wrong_value") else kind
    rng = random.Random(f"{seed}:{row.get('problem_id')}:{row.get('register')}:{key}:{row.get('sample', 0)}")
    task = task_of(row.get("problem") or {})
    if kind not in task.corruptions:
        return None
    if kind not in SHARED:
        res = task.corrupt(kind, row, rng)
    elif kind.startswith("wrong_value"):
        res = _wrong_value(row, rng, kind.endswith("propagated"))
    else:
        res = (_shuffle if kind == "shuffle_steps" else _delete)(row, rng, task.step_unit(row["problem"]))
    if res is None:
        return None
    text, info = res
    return {**row, "text": text, "corruption": {"kind": kind, "seed": seed, **info}}
