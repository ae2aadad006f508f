"""Failure categories of KG answers, verifiable from the path check: hallucinated edge, inverted relation, skipped
hop (shortcut), wrong entity, broken chain, no answer, loop."""

from __future__ import annotations

from tracestyle.answers.repetition import is_loop
from tracestyle.tasks.kg.path import reachable


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
