"""kg_path verifier: parse the hops a trace asserts through relation phrasings and check them against the KG."""

from __future__ import annotations

import re
from functools import lru_cache

from tracestyle.curate.kg_graph import KnowledgeGraph, entity_pattern
from tracestyle.curate.verdict import Verdict

_SEGMENT = re.compile(r"\n|(?<=[.!?;])\s+")


@lru_cache(maxsize=16)
def _phrase_rx(kg_id: int, phrases: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"(?<![\w-])(" + "|".join(re.escape(p) for p in phrases) + r")(?![\w-])", re.IGNORECASE)


def asserted_hops(text: str, kg: KnowledgeGraph) -> list[dict]:
    """Every (head, relation, tail) a trace states: two entity mentions in one sentence with a phrasing between."""
    ents = entity_pattern(kg)
    table = kg.phrase_table()
    by_phrase = {p.lower(): (r, inv) for p, r, inv in table}
    prx = _phrase_rx(id(kg), tuple(p for p, _, _ in table))
    canon = {n.lower(): n for n in kg.entities}
    out = []
    for seg in _SEGMENT.split(text):
        mentions = [(m.start(), m.end(), canon[m.group(1).lower()]) for m in ents.finditer(seg)]
        for (_, e1, a), (s2, _, b) in zip(mentions, mentions[1:]):
            between = seg[e1:s2]
            pm = prx.search(between)
            if not pm:
                continue
            rel, inverse = by_phrase[pm.group(1).lower()]
            head, tail = (b, a) if inverse else (a, b)
            out.append({"from": a, "to": b, "head": head, "relation": rel, "tail": tail, "phrase": pm.group(1)})
    return out


def reachable(start: str, edges: list) -> set[str]:
    reach, changed = {start}, True
    while changed:
        changed = False
        for a, b in edges:
            if a in reach and b not in reach:
                reach.add(b)
                changed = True
    return reach


def verify_kg_path(text: str, problem: dict, kg: KnowledgeGraph) -> Verdict:
    """ok when at least one hop is asserted, every asserted hop is a KG edge in the stated direction,
    and the valid hops chain the question's start entity to its answer."""
    hops = asserted_hops(text, kg)
    valid, invalid = [], []
    for h in hops:
        if kg.has_edge(h["head"], h["relation"], h["tail"]):
            valid.append(h)
        elif kg.has_edge(h["tail"], h["relation"], h["head"]):
            invalid.append({**h, "kind": "inverted"})
        else:
            invalid.append({**h, "kind": "hallucinated"})
    connected = problem["answer_entity"] in reachable(problem["start"], [(h["from"], h["to"]) for h in valid])
    gold_edges = {(p["from"], p["to"]) for p in problem.get("path", [])}
    covered = sum(1 for h in valid if (h["from"], h["to"]) in gold_edges)
    details = {"asserted": len(hops), "valid_hops": len(valid), "invalid_hops": invalid, "connected": connected,
               "valid": [[h["from"], h["to"]] for h in valid],
               "gold_coverage": covered / max(1, len(gold_edges))}
    if not hops:
        return Verdict(False, "kg_path:no_hops", details=details)
    if invalid:
        return Verdict(False, f"kg_path:{invalid[0]['kind']}_edge", details=details)
    if not connected:
        return Verdict(False, "kg_path:broken_chain", details=details)
    return Verdict(True, "ok", details=details)
