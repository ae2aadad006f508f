"""Decontamination: word n-gram overlap of curated questions and traces with evaluation text (the eval problems,
and the GSM8K test set where it is on disk), after normalising case, punctuation and spacing, as the open-r1 and
cosmopedia pipelines do (8- to 13-grams). N-grams shared by many reference documents are template text (every KG
question says "follow these links in order"), not contamination, and are left out of the index."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(ws: list[str], n: int):
    return (tuple(ws[i:i + n]) for i in range(len(ws) - n + 1))


@dataclass
class NgramIndex:
    n: int = 13
    max_doc_share: float = 0.02          # an n-gram in more reference documents than this is template text
    grams: dict[tuple, str] = field(default_factory=dict)
    references: int = 0
    template_ngrams: int = 0

    @classmethod
    def build(cls, docs: list[tuple[str, str]], n: int = 13, max_doc_share: float = 0.02) -> NgramIndex:
        """docs: (source id, text) pairs."""
        if not 8 <= n <= 13:
            raise ValueError(f"n must be 8 to 13 (the range decontamination pipelines use), got {n}")
        seen: dict[tuple, str] = {}
        df: Counter = Counter()
        for sid, text in docs:
            for g in set(ngrams(words(text), n)):
                df[g] += 1
                seen.setdefault(g, sid)
        limit = max(2, int(max_doc_share * len(docs)))
        grams = {g: sid for g, sid in seen.items() if df[g] <= limit}
        return cls(n=n, max_doc_share=max_doc_share, grams=grams, references=len(docs),
                   template_ngrams=len(seen) - len(grams))

    def first_hit(self, text: str) -> tuple[str, str] | None:
        """(the matched n-gram, the reference it came from) for the first overlap in text, or None."""
        for g in ngrams(words(text), self.n):
            sid = self.grams.get(g)
            if sid is not None:
                return " ".join(g), sid
        return None


def reference_docs(eval_problems: list[dict], gsm8k_test: list[dict]) -> list[tuple[str, str]]:
    """The evaluation text a curated row must not contain: questions and, where present, reference solutions."""
    docs = []
    for p in [*eval_problems, *gsm8k_test]:
        docs.append((str(p.get("id")), p["question"]))
        if p.get("solution"):
            docs.append((str(p.get("id")), p["solution"]))
    return docs
