"""Answer extraction as a named cascade (lm-eval style "strict" markers, then "flexible" fallbacks), task-agnostic.

Conventions read: `<answer>…</answer>`, `####`, `\\boxed{…}` (also `\\boxed{\\text{…}}`), an answer label
("Answer:", "**Final answer:**", "ANSWER:") with the answer on the same line, after the last step on that line, or
on the next line, "the answer is …", "A: …", bold. A reasoning model's `<think>…</think>` block is never read for the
answer: only what follows its last closing tag is (nothing, when the block was never closed). Tasks match the
extracted text against gold (numbers, entities, option letters, sets); a hedged answer ("C or B", "either X or Y")
is never correct.
"""

from __future__ import annotations

import re
import string

from tracestyle.answers.repetition import looks_cut_off

_LABEL = r"\**\s*(?:final answer|answer)\s*\**\s*[:：]\s*\**"
# (name, pattern): the captured group is the answer text; the last match in the text wins, because
# models often restate a draft answer before the final one.
MARKERS: list[tuple[str, re.Pattern]] = [
    ("answer_tag", re.compile(r"(?is)<answer>\s*(.*?)\s*</answer>")),
    ("hashes", re.compile(r"####\s*([^\n]+)")),
    ("boxed", re.compile(r"\\boxed\{((?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}")),
    ("answer_label_next_line", re.compile(rf"(?im)^\s*{_LABEL}\s*$\n+\s*([^\n]+)")),
    ("answer_label", re.compile(rf"(?im)(?<![\w*]){_LABEL}[ \t]*([^\n*][^\n]*)")),
    ("the_answer_is", re.compile(r"(?i)\bthe (?:final |correct )?answer is\s*[:：]?\s*([^\n]+?)(?:\.\s|\.?$|\n)")),
    ("a_colon", re.compile(r"(?m)^\s*A\s*[:：]\s*([^\n]+)")),
    ("bold", re.compile(r"\*\*([^*\n]+)\*\*")),
]
STRICT = ("answer_tag", "hashes", "boxed", "answer_label_next_line", "answer_label", "the_answer_is", "a_colon")
_HEDGE = re.compile(r"(?i)\beither\b|\b(?:or|and/or)\b|\s/\s")
_SENT_END = re.compile(r"[.!?](?=\s)|\n")
_LIST_MARK_END = re.compile(r"(?m)^[ \t]*\d+[.)]\Z")   # "31." that opened a cut-off list item: no sentence


_THINK_OPEN = re.compile(r"(?i)<(?:think|thinking|reasoning)>")
_THINK_CLOSE = re.compile(r"(?i)</(?:think|thinking|reasoning)>")


def after_reasoning(text: str) -> str:
    """The part of a reasoning model's output that can hold its answer (R1 distils, Qwen3, …): after the last
    `</think>` (the opening tag may sit in the prompt); empty when a block was opened and never closed (cut off
    while thinking), because a number met while thinking is a draft, not an answer."""
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        return text[closes[-1].end():]
    return "" if _THINK_OPEN.search(text) else text


def drop_cut_fragment(text: str) -> str:
    """A generation cut off by the token limit ends in a fragment ("The answer is 1" of "12"): keep the text up
    to the last finished line or sentence, so the fragment cannot win over the answers stated before it."""
    ends = [m.end() for m in _SENT_END.finditer(text)]
    kept = _LIST_MARK_END.sub("", text[: ends[-1]]) if ends else ""
    return kept if kept.strip() else text


def answer_region(text: str, truncated: bool | None = None) -> str:
    """Where an answer may be read: after any reasoning block, and without the unfinished fragment of a generation
    cut off by its token limit (`truncated`; None: judged from the text, e.g. a loop that ran out of room).
    The one truncation rule of every extractor."""
    text = after_reasoning(text)
    return drop_cut_fragment(text) if truncated or (truncated is None and looks_cut_off(text)) else text


def last_line(text: str, *, truncated: bool | None = None) -> str | None:
    """The last non-empty line, the flexible fallback when no marker is found; a generation cut off by the token
    limit loses its unfinished fragment first."""
    body = answer_region(text, truncated)
    lines = [ln for ln in body.strip().split("\n") if ln.strip()]
    return lines[-1] if lines else None


def extract_marked(text: str, names: tuple[str, ...] | None = None, *,
                   truncated: bool | None = None) -> tuple[str | None, str | None]:
    """(answer text, extractor name) from the first extractor in the cascade that matches. `truncated`: the
    generation hit its token limit (None: guess from the text, e.g. a repetition loop that ran out of room)."""
    text = answer_region(text, truncated)
    for name, rx in MARKERS:
        if names and name not in names:
            continue
        hits = [h for h in rx.findall(text) if h.strip().strip("*").strip()]
        if hits:
            return clean_answer(hits[-1]), name
    return None, None


def clean_answer(raw: str) -> str:
    s = strip_latex(raw.strip())
    s = s.strip().strip("*").strip()
    return s.strip("$").strip() if s.startswith("$") and s.endswith("$") and len(s) > 2 else s


def strip_latex(s: str) -> str:
    s = re.sub(r"\\frac\{([^{}]+)\}\{([^{}]+)\}", r"\1/\2", s)
    for _ in range(3):   # \boxed{\text{\textbf{x}}}
        s = re.sub(r"\\(?:text|mathrm|textbf|mathbf|textit|operatorname)\{([^{}]*)\}", r"\1", s)
    return s.replace("\\$", "$").replace("\\%", "%").replace("\\,", "").replace("{,}", ",").replace("\\!", "")


def is_hedged(raw: str, exact: bool = False) -> bool:
    """'C or B', 'either 5 or 6', '12 / 13': two candidates offered, so the answer commits to neither.
    `exact`: the text already equals a gold answer (an entity whose name contains 'or' is not a hedge)."""
    return not exact and bool(_HEDGE.search(raw))


def normalize_entity(s: str) -> str:
    s = s.lower().strip()
    s = s.strip(string.punctuation + " \"'`")
    s = re.sub(r"^(the|a|an)\s+", "", s)
    s = "".join(ch for ch in s if ch not in '"\'`*')
    return " ".join(s.split())


def token_f1(pred: str, gold: str) -> float:
    p, g = normalize_entity(pred).split(), normalize_entity(gold).split()
    if not p or not g:
        return 0.0
    common = sum(min(p.count(t), g.count(t)) for t in set(g))
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def split_items(raw: str) -> list[str]:
    """'A, B and C' -> ['A', 'B', 'C'] for answers that are sets."""
    parts = re.split(r"\s*(?:,|;|\band\b|&)\s*", raw)
    return [p for p in (x.strip() for x in parts) if p]


def gold_list(gold) -> list[str]:
    """Gold as a list: one answer, or a set of them (a JSON list, or a string joined by '|')."""
    if isinstance(gold, list):
        return [str(g) for g in gold]
    return [g.strip() for g in str(gold).split("|")] if "|" in str(gold) else [str(gold)]
