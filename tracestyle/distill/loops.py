"""Stopping greedy rows stuck in a loop, token by token, during evaluation.

Why: a small student decoding greedily that starts repeating itself does not stop, and the rest of its token budget
only repeats the loop (measured on the quickstart's 200 questions: the Gemma base model ran 194 of 200 rows to the
limit, most of them numbered lists whose lines differ only in their number). Its answer is what the loop says, so
the row is scored as if it had run to the limit (marked truncated: the cut-off fragment never counts as the answer).
"""

from __future__ import annotations

import re

MIN_SPAN = 24      # tokens the repetition must cover before a row is called stuck
MAX_CYCLE = 40     # longest repeated unit looked for, in tokens
# a numbered line repeated: a Gold-trained 135M student once wrote the same step 9 times over, then answered
ITEM_REPEATS = 10
_NUMERIC = re.compile(r"^[\s▁Ġ]*[0-9]+[.)]?$")
_NUM = -1          # the class every item number falls into


def token_classes(tok) -> tuple[frozenset, frozenset]:
    """(ids that are (part of) a number, ids that hold a line break): one pass over the vocabulary."""
    vocab = tok.get_vocab()
    return (frozenset(i for t, i in vocab.items() if _NUMERIC.match(t)),
            frozenset(i for t, i in vocab.items() if "\n" in t or "Ċ" in t))


def _classes(ids: list[int], numeric: frozenset, newline: frozenset) -> list[int]:
    """Item numbers ("14." or "Step 14:": a number among a line's first three tokens) become one _NUM, so that a
    numbered list repeating one line reads as a cycle. Numbers further into a line stay as they are: correct
    arithmetic repeats a line's shape with other numbers ("On the third bounce, 24 / 2 = 12 feet.")."""
    out: list[int] = []
    pos = 0
    for t in ids:
        if t in numeric and (pos <= 2 or (out and out[-1] == _NUM)):
            if not out or out[-1] != _NUM:
                out.append(_NUM)
        else:
            out.append(t)
        pos = 0 if t in newline else pos + 1
    return out


def _repeats(seq: list[int], repeats: int) -> bool:
    """The end of `seq` is one unit repeated `repeats` times or more (short units: until they cover MIN_SPAN
    tokens), with at most one token in sixteen differing per repetition (an ordinal, a changed word)."""
    n = len(seq)
    for k in range(1, MAX_CYCLE + 1):
        reps = max(repeats, -(-MIN_SPAN // k))
        if reps * k > n:
            break
        tail = seq[n - k:]
        allowed = k // 16
        if all(sum(a != b for a, b in zip(seq[n - (r + 1) * k: n - r * k], tail)) <= allowed
               for r in range(1, reps)):
            return True
    return False


def in_loop(ids: list[int], classes: tuple[frozenset, frozenset] | None = None) -> bool:
    """Stuck: the last tokens repeat one unit 3 times, or ITEM_REPEATS times when item numbers are read as one class
    ("1. The service is down.\n2. The service is down.\n...")."""
    tail = ids[-(MAX_CYCLE * ITEM_REPEATS + MIN_SPAN):]
    return _repeats(tail, 3) or classes is not None and _repeats(_classes(tail, *classes), ITEM_REPEATS)


class LoopWatch:
    """The loop check for a generation callback, built once per tokenizer (its vocabulary scan is the costly
    part); checks every few tokens (a loop is seen a few tokens late, at a fraction of the cost of each one)."""

    def __init__(self, tok, every: int = 4, *, classes: tuple[frozenset, frozenset] | None = None) -> None:
        # `classes` instead of a tokenizer: the watch inside vLLM's engine, which gets them from the caller
        self.classes = classes if classes is not None else token_classes(tok)
        self.every = every

    def stuck(self, row: list[int]) -> bool:
        return len(row) >= MIN_SPAN and len(row) % self.every == 0 and in_loop(row, self.classes)
