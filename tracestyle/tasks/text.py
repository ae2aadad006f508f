"""Reading a word problem sentence by sentence, shared by the tasks whose reference solutions restate it."""

from __future__ import annotations

import re

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$\"'])")


def split_sentences(text: str) -> list[str]:
    return [p.strip() for p in _SENT.split(" ".join(text.split())) if p.strip()]


def facts_and_goal(sents: list[str]) -> tuple[list[str], str]:
    """The question sentences (ending in "?"; else the last sentence) as the goal, the others as the facts."""
    goal_idx = [i for i, s in enumerate(sents) if s.endswith("?")] or [len(sents) - 1]
    return [s for i, s in enumerate(sents) if i not in goal_idx], " ".join(sents[i] for i in goal_idx)


def with_article(noun: str) -> str:
    """'an error', 'a fix', 'an hour', 'a unit': the article agrees with the sound of the noun."""
    w = noun.strip()
    low = w.lower()
    vowel = low[:1] in "aeio" or (low[:1] == "u" and not re.match(r"u(ni|s[eu]|ti)", low))
    if re.match(r"(hour|honest|honou?r|heir)", low):
        vowel = True
    if re.match(r"(one\b|eu|ewe)", low):
        vowel = False
    return ("an " if vowel else "a ") + w
