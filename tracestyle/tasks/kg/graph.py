"""Knowledge graph model: typed entities, relations with phrasings (inverse and symmetric), edges."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class Relation:
    name: str
    head_types: frozenset[str] | None   # None: any type (exported KGs often mix types on one relation)
    tail_types: frozenset[str] | None
    phrasings: tuple[str, ...]          # "A <phrasing> B" states the edge (A, name, B)
    inverse_name: str
    inverse_phrasings: tuple[str, ...]  # "B <inverse phrasing> A" states the same edge; empty: walked forwards only
    symmetric: bool = False             # "A <phrasing> B" and "B <phrasing> A" state the same edge


@dataclass
class KnowledgeGraph:
    name: str
    entities: dict[str, str]            # entity name -> type
    relations: dict[str, Relation]
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)   # other surface forms -> entity name
    _out: dict[tuple[str, str], list[str]] = field(default_factory=dict, repr=False)
    _in: dict[tuple[str, str], list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for h, r, t in sorted(self.edges):
            self._out.setdefault((h, r), []).append(t)
            self._in.setdefault((t, r), []).append(h)

    def targets(self, entity: str, relation: str, inverse: bool = False) -> list[str]:
        if self.relations[relation].symmetric:
            both = self._out.get((entity, relation), []) + self._in.get((entity, relation), [])
            return sorted(set(both))
        return (self._in if inverse else self._out).get((entity, relation), [])

    def has_edge(self, h: str, r: str, t: str) -> bool:
        if (h, r, t) in self.edges:
            return True
        rel = self.relations.get(r)
        return bool(rel and rel.symmetric and (t, r, h) in self.edges)

    def phrase(self, relation: str, inverse: bool = False) -> str:
        rel = self.relations[relation]
        return rel.inverse_phrasings[0] if inverse and not rel.symmetric else rel.phrasings[0]

    def fact(self, edge: tuple[str, str, str]) -> str:
        h, r, t = edge
        return f"{h} {self.phrase(r)} {t}."

    def of_type(self, etype: str) -> list[str]:
        return sorted(e for e, t in self.entities.items() if t == etype)

    def phrase_table(self) -> list[tuple[str, str, bool]]:
        """(phrasing, relation, inverse) longest first, so 'is caused by' wins over 'caused by'."""
        rows = []
        for rel in self.relations.values():
            rows += [(p, rel.name, False) for p in rel.phrasings]
            rows += [(p, rel.name, True) for p in rel.inverse_phrasings if not rel.symmetric]
        return sorted(rows, key=lambda x: -len(x[0]))

    @cached_property
    def content_hash(self) -> str:
        """Hash of what the KG says (not of its file's formatting): problems record it to find their KG again."""
        blob = json.dumps({"entities": sorted(self.entities.items()), "edges": sorted(self.edges),
                           "relations": sorted((r.name, r.phrasings, r.inverse_phrasings, r.symmetric)
                                               for r in self.relations.values())})
        return hashlib.sha256(blob.encode()).hexdigest()

    @cached_property
    def entity_pattern(self) -> re.Pattern:
        """Every entity name and alias as one alternation, longest first; cached on the KG itself."""
        names = sorted(set(self.entities) | set(self.aliases), key=len, reverse=True)
        return re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in names) + r")(?![\w-])", re.IGNORECASE)

    @cached_property
    def phrase_pattern(self) -> re.Pattern:
        phrases = [p for p, _, _ in self.phrase_table()]
        return re.compile(r"(?<![\w-])(" + "|".join(re.escape(p) for p in phrases) + r")(?![\w-])", re.IGNORECASE)

    @cached_property
    def canonical(self) -> dict[str, str]:
        """Lower-cased surface form -> entity name."""
        out = {a.lower(): n for a, n in self.aliases.items()}
        out.update({n.lower(): n for n in self.entities})
        return out
