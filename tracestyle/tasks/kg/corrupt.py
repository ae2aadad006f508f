"""The KG's own corruption: one intermediate entity of the path replaced by another of the same type
(curate/corrupt.py has the shared kinds)."""

from __future__ import annotations

import random
import re

from tracestyle.tasks.kg.refs import resolve_kg


def wrong_edge(row: dict, rng: random.Random) -> tuple[str, dict] | None:
    prob = row.get("problem") or {}
    path = prob.get("path") or []
    if len(path) < 2:
        return None
    kg = resolve_kg(prob)
    hop = rng.randrange(len(path) - 1)                   # an intermediate entity: never the answer
    ent = path[hop]["to"]
    on_path = {h["from"] for h in path} | {h["to"] for h in path}
    others = [e for e in kg.of_type(kg.entities.get(ent, "")) if e not in on_path] or \
        [e for e in kg.entities if e not in on_path]
    if not others:
        return None
    text = row["text"]
    ms = [m for m in re.finditer(rf"\b{re.escape(ent)}\b", text, re.IGNORECASE)]
    if not ms:
        return None
    m = ms[0]                                           # the hop that reaches it: the next hop then starts elsewhere
    wrong = rng.choice(others)
    return text[:m.start()] + wrong + text[m.end():], {"hop": hop, "entity": ent, "corrupted": wrong}
