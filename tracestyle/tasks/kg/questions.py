"""Rule-generated multi-hop questions over a knowledge graph, deterministic from a seed.

Splits are hop ranges (default train 1-3, eval 4-5). A path's hash also decides its side, independently of
the ranges, so train and eval never share a question or a path, even when made with different ranges.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from random import Random

from tracestyle.errors import InputError
from tracestyle.tasks.kg.graph import KnowledgeGraph
from tracestyle.tasks.kg.refs import get_kg, kg_ref

DEFAULT_HOPS = {"train": (1, 3), "eval": (4, 5)}
LETTERS = "ABCD"
MAX_ANSWERS = 5   # a set-answer question whose chain fans out wider than this is not a fair question


def _path_key(start: str, hops: list[dict]) -> str:
    sig = start + "|" + "|".join(f"{h['relation']}{'^' if h['inverse'] else ''}" for h in hops)
    return hashlib.sha256(sig.encode()).hexdigest()


def _walk(kg: KnowledgeGraph, rng: Random, n_hops: int, answer_sets: bool = False) -> tuple[str, list[dict]] | None:
    start = rng.choice(sorted(kg.entities))
    cur, seen, hops = start, {start}, []
    for _ in range(n_hops):
        options = []
        for rel in kg.relations.values():
            for inverse in ((False,) if rel.symmetric or not rel.inverse_phrasings else (False, True)):
                tg = kg.targets(cur, rel.name, inverse)
                # one target keeps the answer unique (unless sets are allowed); unseen keeps the chain from looping
                fresh = [t for t in tg if t not in seen]
                if fresh and (answer_sets or len(tg) == 1):
                    options += [(rel.name, inverse, t) for t in (fresh if answer_sets else fresh[:1])]
        if not options:
            return None
        rname, inverse, nxt = rng.choice(sorted(options))
        hops.append({"from": cur, "relation": rname, "inverse": inverse, "to": nxt,
                     "phrase": kg.phrase(rname, inverse)})
        seen.add(nxt)
        cur = nxt
    return start, hops


def _split_of(key: str, hops: int, ranges: dict[str, tuple[int, int]]) -> str | None:
    """Every path belongs to one side by its hash alone (a third to eval), whatever the hop ranges, so
    files generated with different ranges still never share a path."""
    side = "eval" if int(key[:8], 16) % 3 == 0 else "train"
    lo, hi = ranges.get(side, (0, -1))
    if side in ranges and lo <= hops <= hi:
        return side
    return None


def _distractors(kg: KnowledgeGraph, rng: Random, path_edges: set, entities: list[str], k: int) -> list[tuple]:
    if k <= 0:
        return []
    near = sorted(e for e in kg.edges if (e[0] in entities or e[2] in entities) and e not in path_edges)
    rng.shuffle(near)
    out = near[: max(1, k // 2)]
    rest = sorted(kg.edges - path_edges - set(out))
    out += rng.sample(rest, min(k - len(out), len(rest)))
    return out


def answer_set(kg: KnowledgeGraph, start: str, hops: list[dict]) -> list[str]:
    """Every entity the chain of relations reaches from the start (the walk's own end among them)."""
    frontier = {start}
    for h in hops:
        frontier = {t for e in frontier for t in kg.targets(e, h["relation"], h["inverse"]) if t != start}
    return sorted(frontier)


@dataclass(frozen=True)
class Framing:
    """How a path becomes a question: its split and seed (in the id and provenance), multiple choice or not, open
    book (the path's facts and distractor facts in the prompt) or closed book, and how many distractors (None:
    hops + 2)."""
    split: str
    seed: int
    mc: bool = False
    open_book: bool = True
    distractors: int | None = None


@dataclass(frozen=True)
class Chain:
    """A walk through the KG: its start, its hops, every entity it reaches (`answers`) and its dedup key."""
    start: str
    hops: list[dict]
    answers: list[str]
    key: str


def make_problem(kg: KnowledgeGraph, chain: Chain, rng: Random, how: Framing, *, idx: int, ref: dict) -> dict:
    start, hops, answers, key = chain.start, chain.hops, chain.answers, chain.key
    split, seed, mc, open_book, distractors = how.split, how.seed, how.mc, how.open_book, how.distractors
    answer = hops[-1]["to"]
    atype, stype = kg.entities[answer], kg.entities[start]
    links = " -> ".join(h["phrase"] for h in hops)
    query = (f'Start at the {stype.replace("_", " ")} "{start}". Follow these links in order: {links}. '
             f"Which {atype.replace('_', ' ')} do you reach?")
    parts = []
    facts: list[str] = []
    if open_book:
        path_edges = {(h["to"], h["relation"], h["from"]) if h["inverse"] else (h["from"], h["relation"], h["to"])
                      for h in hops}
        ents = [start] + [h["to"] for h in hops]
        facts = [kg.fact(e) for e in sorted(path_edges) + _distractors(kg, rng, path_edges, ents,
                                                                len(hops) + 2 if distractors is None else distractors)]
        rng.shuffle(facts)
        parts.append("Facts:\n" + "\n".join(facts))
    parts.append("Question: " + query)
    gold, choices = (answer if len(answers) == 1 else answers), None
    if mc:
        on_path = {start} | {h["to"] for h in hops}
        pool = [e for e in kg.of_type(atype) if e not in on_path]
        if len(pool) < 3:
            raise InputError(f"type '{atype}' has fewer than 4 entities: cannot make multiple choice", field="mc")
        choices = rng.sample(pool, 3) + [answer]
        rng.shuffle(choices)
        gold = LETTERS[choices.index(answer)]
        parts.append("Options:\n" + "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)))
    return {
        "id": f"kg-{kg.name}-{split}-s{seed}-{idx}",
        "task": "kg",
        "domain": kg.name,
        "kg": ref,
        "split": split,
        "seed": seed,
        "source_index": idx,
        "question": "\n\n".join(parts),
        "query": query,
        "gold": gold,
        "answer_entity": answer,
        "answers": answers,
        # a chain that fans out reaches several entities: naming any one of them, by a valid path, answers it
        "answer_match": "any",
        "answer_type": atype,
        "start": start,
        "start_type": stype,
        "choices": choices,
        "mc": mc,
        "open_book": open_book,
        "facts": facts,
        "path": hops,
        "path_key": key,
        "difficulty": {"hops": len(hops)},
    }


def generate_kg_problems(kg_spec: str = "devops", split: str = "train", n: int = 100, seed: int = 0,
                         hop_ranges: dict[str, tuple[int, int]] | None = None, *, answer_sets: bool = False,
                         **framing) -> list[dict]:
    """n distinct questions whose paths fall on `split`'s side; kg_spec is a built-in name or a KG .json path;
    `framing`: Framing's mc, open_book and distractors."""
    how = Framing(split, seed, **framing)
    mc = how.mc
    ranges = dict(hop_ranges or DEFAULT_HOPS)
    if split not in ranges:
        raise InputError(f"unknown split '{split}' (known: {', '.join(ranges)})", field="split")
    for s, (lo, hi) in ranges.items():
        if not (1 <= lo <= hi <= 8):
            raise InputError(f"hop range {lo}-{hi} for split '{s}' must satisfy 1 <= lo <= hi <= 8", field="hops")
    if n < 1:
        raise InputError("n must be at least 1", field="n")
    if mc and answer_sets:
        raise InputError("multiple choice needs a single answer: drop --answer-sets or --mc", field="mc")
    kg = get_kg(kg_spec)
    ref = kg_ref(kg_spec, kg)
    lo, hi = ranges[split]
    out, seen = [], set()
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 400 * n + 4000:
            why = ("walks follow only links with a single target, so that every question has one answer; "
                   "pass --answer-sets to also ask questions whose answer is any of a set"
                   if not answer_sets else "even with answer sets")
            raise InputError(f"could not make {n} distinct {lo}-{hi} hop questions on the {split} side of KG "
                             f"'{kg.name}' ({len(kg.entities)} entities, {len(kg.edges)} edges): found {len(out)} "
                             f"after {attempts - 1} walks. The ceiling: {why}; a third of all paths go to eval. "
                             "Lower --n or widen the hop range", field="n")
        rng = Random(f"{kg.name}|{seed}|{split}|{attempts}")
        walk = _walk(kg, rng, rng.randint(lo, hi), answer_sets)
        if walk is None:
            continue
        start, hops = walk
        key = _path_key(start, hops)
        if key in seen or _split_of(key, len(hops), ranges) != split:
            continue
        answers = answer_set(kg, start, hops)
        if len(answers) > MAX_ANSWERS:
            continue
        seen.add(key)
        out.append(make_problem(kg, Chain(start, hops, answers, key), rng, how, idx=len(out), ref=ref))
    return out
