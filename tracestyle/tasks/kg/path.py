"""kg_path verifier: read the hops a trace asserts through relation phrasings and check them against the KG.

A hop is "X <phrasing> Y" inside one sentence or line. Either direction counts as the same edge ("A causes B" and
"B is caused by A"). X and Y must be entities the KG knows: a known entity linked to an unknown name is a
hallucinated edge, never a bridge between the known entities around it.
"""

from __future__ import annotations

import re

from tracestyle.tasks.kg.graph import KnowledgeGraph
from tracestyle.verdict import Verdict

_SEGMENT = re.compile(r"\n|(?<=[.!?;])\s+")
# words that may sit between an entity and a phrasing without naming anything ("B, which in turn leads to C")
_FILLER = set("""a an the which that who whom whose this it its they them so then and thus hence also in turn
finally next first second third after that from there therefore is are was were be been directly step link
hop we see find know have has where here now again further continuing following last problem issue answer
question result entity one""".split())
_WORD = re.compile(r"[A-Za-z0-9][\w'-]*")
_LABEL = re.compile(r"^\s*(?:[A-Z]{1,3}\d*|Step \d+|\d+[.)])\s*:\s*|^\s*[-*•]\s+")
MAX_UNKNOWN_WORDS = 6   # a longer span after a phrasing is prose, not a named entity


def _content(span: str) -> list[str]:
    return [w for w in _WORD.findall(span) if w.lower() not in _FILLER]


def _joins(span: str) -> bool:
    """The text between an entity and a phrasing names nothing else ("B, which we found above, leads to")."""
    return not _content(re.sub(r",[^,]*,", " ", span))


def asserted_hops(text: str, kg: KnowledgeGraph) -> list[dict]:
    """Every hop a trace states, as written: from/to in the order of the text, head/relation/tail as the KG
    edge it claims. A hop with a name the KG does not know carries `unknown`."""
    table = {p.lower(): (r, inv) for p, r, inv in kg.phrase_table()}
    out = []
    for seg in _SEGMENT.split(text):
        seg = _LABEL.sub("", seg)
        mentions = [(m.start(), m.end(), kg.canonical[m.group(1).lower()]) for m in kg.entity_pattern.finditer(seg)]
        phrases = [m for m in kg.phrase_pattern.finditer(seg)
                   if not any(s <= m.start() < e for s, e, _ in mentions)]   # a phrasing inside a name is not one
        for i, pm in enumerate(phrases):
            left_lo = phrases[i - 1].end() if i else 0
            right_hi = phrases[i + 1].start() if i + 1 < len(phrases) else len(seg)
            left = [m for m in mentions if left_lo <= m[0] and m[1] <= pm.start()]
            right = [m for m in mentions if pm.end() <= m[0] and m[1] <= right_hi]
            a = left[-1] if left and _joins(seg[left[-1][1]:pm.start()]) else None
            b = right[0] if right and _joins(seg[pm.end():right[0][0]]) else None
            rel, inverse = table[pm.group(1).lower()]
            if a and b:
                head, tail = (b[2], a[2]) if inverse else (a[2], b[2])
                out.append({"from": a[2], "to": b[2], "head": head, "relation": rel, "tail": tail,
                            "phrase": pm.group(1), "written": seg[a[0]:b[1]].strip()})
                continue
            # one side names a KG entity, the other a name the KG does not have: a hallucinated hop
            lspan = seg[left_lo:pm.start()].split(",")[-1]
            rspan = re.split(r"[,(]", seg[pm.end():right_hi])[0]
            if a and not b and 0 < len(_content(rspan)) <= MAX_UNKNOWN_WORDS:
                unknown = " ".join(_content(rspan)).strip(" .")
                out.append({"from": a[2], "to": unknown, "relation": rel, "phrase": pm.group(1), "unknown": unknown,
                            "written": (seg[a[0]:pm.end()] + rspan).strip()})
            elif b and not a and 0 < len(_content(lspan)) <= MAX_UNKNOWN_WORDS and _content(lspan)[0][:1].isupper():
                unknown = " ".join(_content(lspan)).strip(" .")
                out.append({"from": unknown, "to": b[2], "relation": rel, "phrase": pm.group(1), "unknown": unknown,
                            "written": (lspan + seg[pm.start():b[1]]).strip()})
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
    """ok when at least one hop is asserted, every asserted hop is a KG edge in the stated direction, no hop
    names an entity the KG lacks, and the valid hops chain the question's start entity to an answer."""
    hops = asserted_hops(text, kg)
    valid, invalid = [], []
    for h in hops:
        if "unknown" in h:
            invalid.append({**h, "kind": "hallucinated"})
        elif kg.has_edge(h["head"], h["relation"], h["tail"]):
            valid.append(h)
        elif kg.has_edge(h["tail"], h["relation"], h["head"]):
            invalid.append({**h, "kind": "inverted"})
        else:
            invalid.append({**h, "kind": "hallucinated"})
    answers = problem.get("answers") or [problem["answer_entity"]]
    # a hop links its two entities whichever way the sentence runs ("B is caused by A" links A and B)
    links = [(h["from"], h["to"]) for h in valid] + [(h["to"], h["from"]) for h in valid]
    reach = reachable(problem["start"], links)
    connected = any(a in reach for a in answers)
    gold_edges = {frozenset((p["from"], p["to"])) for p in problem.get("path", [])}
    covered = len({frozenset((h["from"], h["to"])) for h in valid} & gold_edges)
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
