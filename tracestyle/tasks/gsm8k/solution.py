"""The known solution of a problem as template context: the same content for every register."""

from __future__ import annotations

import re

from tracestyle.answers.numbers import all_numbers, format_number, numbers_equal, parse_number
from tracestyle.tasks.text import facts_and_goal, split_sentences

# wording that hides an operation, and what it asks for; the Gold register translates the ones a question uses
TRICKY = [
    (r"\bhalf\b", "half", "divide by 2"),
    (r"\btwice\b", "twice", "multiply by 2"),
    (r"\bdouble\b", "double", "multiply by 2"),
    (r"\btriple\b", "triple", "multiply by 3"),
    (r"\bthe rest\b", "the rest", "what is left after subtracting the parts already named"),
    (r"\bremainder\b", "remainder", "what is left after subtracting the parts already named"),
    (r"\bmore than\b", "more than", "add to the quantity it is compared with"),
    (r"\b(?:less|fewer) than\b", "less than", "subtract from the quantity it is compared with"),
    (r"\bpercent\b|%", "percent", "divide by 100 and multiply by the whole"),
    (r"\bdozens?\b", "dozen", "12 of something"),
    (r"\beach\b", "each", "the amount for one item, multiplied by the number of items"),
    (r"\bper\b", "per", "a rate, multiplied by how many units there are"),
    (r"\baltogether\b|\bin total\b", "in total", "add all the parts together"),
    (r"\bhow (?:much|many) more\b", "how much more", "the difference: subtract the smaller from the larger"),
]


def gsm8k_solution(problem: dict) -> dict:
    facts, goal = facts_and_goal(split_sentences(problem["question"]))
    facts = facts or [problem["question"]]
    tricky, seen = [], set()
    for rx, phrase, meaning in TRICKY:
        if re.search(rx, problem["question"], re.IGNORECASE) and meaning not in seen:
            tricky.append({"phrase": phrase, "meaning": meaning})
            seen.add(meaning)
    steps = problem["steps"]
    results = []  # (step number, value) of every earlier calculator result
    reused = []
    for i, s in enumerate(steps, 1):
        for c in s["calcs"]:
            for v in all_numbers(c["expr"]):
                src = next((n for n, r in reversed(results) if numbers_equal(r, v)), None)
                if src is not None and src != i and v not in (1, 2) and \
                        not any(r["step"] == i and r["source"] == src for r in reused):
                    reused.append({"step": i, "source": src, "value": format_number(v)})
        for c in s["calcs"]:
            v = parse_number(c["result"])
            if v is not None:
                results.append((i, v))
    return {"question": problem["question"], "facts": facts, "goal": goal, "tricky": tricky[:3],
            "steps": steps, "reused": reused[:4], "answer": problem["gold"]}

