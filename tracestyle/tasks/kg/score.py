"""KG answers: an entity name (exact after normalisation, token F1 recorded), an option letter, or one of a set."""

from __future__ import annotations

import re

from tracestyle.answers.extract import (
    STRICT,
    extract_marked,
    gold_list,
    is_hedged,
    last_line,
    normalize_entity,
    split_items,
    token_f1,
)
from tracestyle.tasks.kg.graph import KnowledgeGraph
from tracestyle.verdict import Verdict

_LETTER = re.compile(r"^\(?([A-D])\)?(?:[.):,\s]|$)")


def _golds(problem: dict) -> list[str]:
    if problem.get("answers"):
        return [str(a) for a in problem["answers"]]
    if problem.get("answer_entity"):
        return [str(problem["answer_entity"])]
    return gold_list(problem["gold"])


def _matches(raw: str, gold: str) -> bool:
    r, g = normalize_entity(raw), normalize_entity(gold)
    # "the answer is X, the team that ..." : accept when the answer opens the captured text
    return r == g or normalize_entity(raw.split(",")[0]) == g or (r.startswith(g + " ") and not is_hedged(r))


def verify_kg(text: str, problem: dict, kg: KnowledgeGraph | None = None, *,
              truncated: bool | None = None) -> Verdict:
    """Free-form: exact match after normalisation; multiple choice: the letter; a set: any one (or all of them,
    when the problem says answer_match: all). A hedge between candidates is wrong."""
    golds = _golds(problem)
    match = problem.get("answer_match", "any" if problem.get("answers") else "all")
    raw, how = extract_marked(text, STRICT, truncated=truncated)
    if raw is None:
        # flexible fallback: the last KG entity named in the last line (like lm-eval's "last number")
        raw, how = last_line(text, truncated=truncated), "last_line"
        if raw is None:
            return Verdict(False, "no_answer", None, {"extractor": "none"})
        hits = kg.entity_pattern.findall(raw) if kg is not None else []
        if hits:
            raw, how = kg.canonical[hits[-1].lower()], "last_entity"
    if problem.get("mc") and problem.get("choices"):
        m = _LETTER.match(raw.strip())
        if m:
            ok = m.group(1) == problem["gold"]
            return Verdict(ok, "ok" if ok else "wrong_answer", m.group(1), {"extractor": how})
    exact = any(normalize_entity(raw) == normalize_entity(g) for g in golds)
    if is_hedged(raw, exact) and how != "last_line":
        return Verdict(False, "hedged", raw[:100], {"extractor": how})
    if match == "all" and len(golds) > 1:
        items = split_items(raw)
        ok = len(items) == len(golds) and all(any(_matches(i, g) for i in items) for g in golds)
    else:
        ok = any(_matches(raw, g) for g in golds) if how != "last_line" else exact
    f1 = max(token_f1(raw, g) for g in golds)
    if not ok and how == "last_line" and f1 == 0:
        return Verdict(False, "no_answer", raw[:100], {"extractor": how, "f1": 0.0})
    return Verdict(ok, "ok" if ok else "wrong_answer", raw[:100], {"extractor": how, "f1": round(f1, 3)})
