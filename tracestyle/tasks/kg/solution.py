"""The known solution of a KG question (its walk) as template context: the same content for every register."""

from __future__ import annotations

from tracestyle.tasks.text import with_article

KG_CONNECTIVES = ["Following the first link", "Then", "After that", "Next", "Beyond that", "Further on",
                  "Continuing", "From there"]


def kg_solution(problem: dict) -> dict:
    hops = [{"head": h["from"], "phrase": h["phrase"], "tail": h["to"], "relation": h["relation"],
             "inverse": h["inverse"], "fact": _fact_of(problem, h)} for h in problem["path"]]
    inv = []
    for h in hops:
        if h["inverse"] and h["phrase"] not in inv:
            inv.append(h["phrase"])
    n = len(hops)
    conn = (KG_CONNECTIVES[: n - 1] + ["Finally"]) if n > 1 else ["Following the only link"]
    answer_type = problem["answer_type"].replace("_", " ")
    # a set-answer question is answered by the entity its walk reached; multiple choice by the letter
    final = problem["gold"] if problem.get("mc") else problem["answer_entity"]
    return {"question": problem.get("query", problem["question"]), "start": problem["start"],
            "start_type": problem["start_type"].replace("_", " "), "hops": hops, "inverse_phrases": inv,
            "answer": problem["answer_entity"], "answer_type": answer_type, "a_answer_type": with_article(answer_type),
            "final": final, "mc": problem.get("mc", False), "connectives": conn}


def _fact_of(problem: dict, hop: dict) -> str | None:
    """The given fact a hop uses (open-book questions list them), written as the question wrote it; None when the
    question gives no facts (closed book) or none names both ends."""
    a, b = hop["from"].lower(), hop["to"].lower()
    for f in problem.get("facts") or []:
        low = f.lower()
        if a in low and b in low:
            return f.strip()
    return None
