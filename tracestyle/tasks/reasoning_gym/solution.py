"""Reference solutions for reasoning-gym entries, built from what the generator knows (its metadata), in the shape
every register renders: facts, goal, steps (text and any calculations), answer. A dataset with no builder here
and no chain of thought in its metadata has no reference solution: an LLM teacher must write its traces."""

from __future__ import annotations

import re
from collections import deque

from tracestyle.answers.arithmetic import line_statements
from tracestyle.answers.numbers import format_number
from tracestyle.tasks.text import facts_and_goal, split_sentences

# the question's own formatting instructions are not facts of the problem
_INSTRUCTION = re.compile(r"^(?:give|do not|don't|respond|answer|provide|return|write|express|round|state)\b", re.I)
_ABBREV = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|vs|etc)\. ")


def sentences(text: str) -> list[str]:
    text = _ABBREV.sub(lambda m: m.group(1) + ".\0", " ".join(text.split()))   # "Ms. Johnson" is one sentence
    return [s.replace(".\0", ". ") for s in split_sentences(text)]


def _facts_and_goal(question: str) -> tuple[list[str], str]:
    facts, goal = facts_and_goal(sentences(question))
    return [s for s in facts if not _INSTRUCTION.match(s)], goal


def _calcs(line: str) -> list[dict]:
    """The line's stated calculations as the arithmetic checker reads them (units and prose around them left out)."""
    return [{"expr": stmt.rsplit("=", 1)[0].strip(), "result": format_number(stated)}
            for stmt, stated, _computed, _ok in line_statements(line) if "=" in stmt]


def from_cot(entry: dict, cot: str) -> dict:
    """A chain of thought the generator wrote (gsm_symbolic's answer_cot): one step per line before '####'."""
    body = cot.split("####")[0]
    steps = []
    for line in body.splitlines():
        line = line.strip().lstrip("•*-").strip()
        if not line or line.lower().startswith("let's solve") or line.endswith(":") and not _calcs(line):
            continue
        steps.append({"text": line if line[-1] in ".!?" else line + ".", "calcs": _calcs(line)})
    facts, goal = _facts_and_goal(entry["question"])
    return {"facts": facts, "goal": goal, "steps": steps, "answer": str(entry["answer"])}


_MARRIED = re.compile(r"^(\w[\w'-]*) is married to (\w[\w'-]*)\.$")
_CHILDREN = re.compile(r"^They have (?:a child|children) called (.+)\.$")


def family(entry: dict) -> dict | None:
    """The chain of marriage and parent links from the person asked about to the other one."""
    meta = entry["metadata"]
    p1, p2, rel = meta.get("person1"), meta.get("person2"), meta.get("relationship")
    text = entry["question"].split("\n\n")[0]
    edges: dict[str, list[tuple[str, str]]] = {}

    def link(a: str, b: str, says: str) -> None:
        edges.setdefault(a, []).append((b, says))

    couple: tuple[str, str] | None = None
    facts = sentences(text)
    for s in facts:
        m = _MARRIED.match(s)
        if m:
            couple = (m.group(1), m.group(2))
            link(*couple, f"{couple[0]} is married to {couple[1]}.")
            link(couple[1], couple[0], f"{couple[1]} is married to {couple[0]}.")
            continue
        m = _CHILDREN.match(s)
        if m and couple:
            for child in re.split(r",\s*|\s+and\s+", m.group(1)):
                for parent in couple:
                    link(parent, child, f"{parent} is a parent of {child}.")
                    link(child, parent, f"{child} is a child of {parent}.")
    if not (p1 and p2 and rel) or p1 not in edges:
        return None
    prev: dict[str, tuple[str, str] | None] = {p1: None}
    todo = deque([p1])
    while todo:
        cur = todo.popleft()
        for nxt, says in edges.get(cur, []):
            if nxt not in prev:
                prev[nxt] = (cur, says)
                todo.append(nxt)
    if p2 not in prev:
        return None
    chain, cur = [], p2
    while prev[cur] is not None:
        cur, says = prev[cur]
        chain.append(says)
    steps = [{"text": s, "calcs": []} for s in reversed(chain)]
    # stated without a direction: reasoning-gym's in-law answers name what person2 is to person1 (Sarah,
    # Elizabeth's son's wife, "is mother-in-law to" Elizabeth), the other relations what person1 is to person2
    steps.append({"text": f"Following these links from {p1} to {p2} gives the relationship asked for: {rel}.",
                  "calcs": []})
    _, goal = _facts_and_goal(entry["question"])
    return {"facts": facts, "goal": goal, "steps": steps, "answer": str(entry["answer"])}


MOVES = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


def grid_path(entry: dict) -> dict | None:
    """Each move of the generator's shortest path from * to #, with the cell it reaches."""
    meta = entry["metadata"]
    grid, moves = meta.get("matrix"), meta.get("solution")
    if not isinstance(grid, list) or not isinstance(moves, list):
        return None
    where = {c: (r, k) for r, row in enumerate(grid) for k, c in enumerate(row) if c in "*#"}
    if "*" not in where or "#" not in where:
        return None
    (r, c), (gr, gc) = where["*"], where["#"]
    facts = [f"The start * is at row {r + 1}, column {c + 1}.", f"The destination # is at row {gr + 1}, column {gc + 1}.",
             "Only O cells are open; X cells are blocked."]
    steps = []
    for m in moves:
        if m not in MOVES:
            return None
        dr, dc = MOVES[m]
        steps.append({"text": f"From row {r + 1}, column {c + 1}, move {m} to row {r + dr + 1}, column {c + dc + 1}.",
                      "calcs": []})
        r, c = r + dr, c + dc
    if moves:
        steps.append({"text": f"That reaches # in {len(moves)} moves, and no shorter route through open cells exists.",
                      "calcs": []})
    else:
        steps.append({"text": "No route through open cells connects * to #, so the path is infeasible.", "calcs": []})
    return {"facts": facts, "goal": "The shortest path from * to #, as a sequence of moves.", "steps": steps,
            "answer": str(entry["answer"])}


BUILDERS = {"family_relationships": family, "shortest_path": grid_path}


def reference_solution(dataset: str, entry: dict) -> dict | None:
    builder = BUILDERS.get(dataset)
    if builder is not None:
        return builder(entry)
    cot = (entry.get("metadata") or {}).get("answer_cot")
    return from_cot(entry, cot) if isinstance(cot, str) and cot.strip() else None
