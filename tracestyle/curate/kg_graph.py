"""Knowledge graph model: typed entities, relations with phrasings and inverses, edges; loading with validation."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from tracestyle.errors import InputError


@dataclass(frozen=True)
class Relation:
    name: str
    head_type: str
    tail_type: str
    phrasings: tuple[str, ...]          # "A <phrasing> B" states the edge (A, name, B)
    inverse_name: str
    inverse_phrasings: tuple[str, ...]  # "B <inverse phrasing> A" states the same edge


@dataclass
class KnowledgeGraph:
    name: str
    entities: dict[str, str]            # entity name -> type
    relations: dict[str, Relation]
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    _out: dict[tuple[str, str], list[str]] = field(default_factory=dict, repr=False)
    _in: dict[tuple[str, str], list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for h, r, t in sorted(self.edges):
            self._out.setdefault((h, r), []).append(t)
            self._in.setdefault((t, r), []).append(h)

    def targets(self, entity: str, relation: str, inverse: bool = False) -> list[str]:
        return (self._in if inverse else self._out).get((entity, relation), [])

    def has_edge(self, h: str, r: str, t: str) -> bool:
        return (h, r, t) in self.edges

    def phrase(self, relation: str, inverse: bool = False) -> str:
        rel = self.relations[relation]
        return rel.inverse_phrasings[0] if inverse else rel.phrasings[0]

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
            rows += [(p, rel.name, True) for p in rel.inverse_phrasings]
        return sorted(rows, key=lambda x: -len(x[0]))

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "entities": [{"name": n, "type": t} for n, t in sorted(self.entities.items())],
            "relations": [{"name": r.name, "head_type": r.head_type, "tail_type": r.tail_type,
                           "phrasings": list(r.phrasings), "inverse": r.inverse_name,
                           "inverse_phrasings": list(r.inverse_phrasings)} for r in self.relations.values()],
            "edges": [list(e) for e in sorted(self.edges)],
        }


def _line_of(text: str, needle: str) -> int | None:
    idx = text.find(needle)
    return None if idx < 0 else text.count("\n", 0, idx) + 1


def load_kg(path: str | Path) -> KnowledgeGraph:
    """Load a user KG from JSON: {name, entities:[{name,type}], relations:[{name, head_type, tail_type,
    phrasings, inverse, inverse_phrasings}], edges:[[head, relation, tail]]}. Errors name file, line and field."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", str(path))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"undecodable bytes at byte {e.start}", str(path), raw.count(b"\n", 0, e.start) + 1) from None
    if not text.strip():
        raise InputError("empty file", str(path))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"malformed JSON: {e.msg}", str(path), e.lineno) from None
    return kg_from_json(data, str(path), text)


def _require(obj: dict, key: str, kind: type, where: str, path: str, text: str):
    if not isinstance(obj, dict) or key not in obj:
        line = _line_of(text, json.dumps(obj)[:30]) if isinstance(obj, dict) else None
        raise InputError(f"missing in {where}", path, line, key)
    if not isinstance(obj[key], kind):
        raise InputError(f"expected {kind.__name__} in {where}", path, _line_of(text, f'"{key}"'), key)
    return obj[key]


def kg_from_json(data: dict, path: str = "<kg>", text: str = "") -> KnowledgeGraph:
    if not isinstance(data, dict):
        raise InputError("top level must be an object", path, 1)
    unknown = set(data) - {"name", "entities", "relations", "edges"}
    if unknown:
        raise InputError("unknown key", path, _line_of(text, f'"{sorted(unknown)[0]}"'), sorted(unknown)[0])
    ents: dict[str, str] = {}
    for i, e in enumerate(_require(data, "entities", list, "KG", path, text)):
        name = _require(e, "name", str, f"entities[{i}]", path, text)
        etype = _require(e, "type", str, f"entities[{i}]", path, text)
        if not name.strip():
            raise InputError("empty entity name", path, _line_of(text, json.dumps(name)), f"entities[{i}].name")
        if name in ents:
            raise InputError(f"duplicate entity '{name}'", path, _line_of(text, json.dumps(name)), f"entities[{i}].name")
        ents[name] = etype
    rels: dict[str, Relation] = {}
    seen_phr: dict[str, str] = {}
    for i, r in enumerate(_require(data, "relations", list, "KG", path, text)):
        where = f"relations[{i}]"
        name = _require(r, "name", str, where, path, text)
        phr = _require(r, "phrasings", list, where, path, text)
        inv_phr = _require(r, "inverse_phrasings", list, where, path, text)
        if not phr or not inv_phr or not all(isinstance(p, str) and p.strip() for p in phr + inv_phr):
            raise InputError("needs at least one non-empty phrasing each way", path, _line_of(text, json.dumps(name)), where)
        for p in phr + inv_phr:
            if p.lower() in seen_phr:
                raise InputError(f"phrasing '{p}' is used by two relations ('{seen_phr[p.lower()]}' and '{name}'); "
                                 "traces could not be parsed unambiguously", path, _line_of(text, json.dumps(p)), where)
            seen_phr[p.lower()] = name
        if name in rels:
            raise InputError(f"duplicate relation '{name}'", path, _line_of(text, json.dumps(name)), where)
        rels[name] = Relation(name, _require(r, "head_type", str, where, path, text),
                              _require(r, "tail_type", str, where, path, text), tuple(phr),
                              str(r.get("inverse", name + "_inverse")), tuple(inv_phr))
    edges: set[tuple[str, str, str]] = set()
    for i, e in enumerate(_require(data, "edges", list, "KG", path, text)):
        where = f"edges[{i}]"
        if not (isinstance(e, list) and len(e) == 3 and all(isinstance(x, str) for x in e)):
            raise InputError("edge must be [head, relation, tail]", path, None, where)
        h, r, t = e
        line = _line_of(text, json.dumps(e)) or _line_of(text, json.dumps(h))
        if r not in rels:
            raise InputError(f"unknown relation '{r}'", path, line, where)
        for ent, role, want in ((h, "head", rels[r].head_type), (t, "tail", rels[r].tail_type)):
            if ent not in ents:
                raise InputError(f"dangling edge: {role} '{ent}' is not an entity", path, line, where)
            if ents[ent] != want:
                raise InputError(f"{role} '{ent}' has type '{ents[ent]}', relation '{r}' wants '{want}'", path, line, where)
        if h == t:
            raise InputError(f"self-loop on '{h}'", path, line, where)
        edges.add((h, r, t))
    if not edges:
        raise InputError("no edges", path, None, "edges")
    name = data.get("name", Path(path).stem)
    return KnowledgeGraph(str(name), ents, rels, edges)


_ENTITY_CACHE: dict[int, re.Pattern] = {}


def entity_pattern(kg: KnowledgeGraph) -> re.Pattern:
    key = id(kg)
    if key not in _ENTITY_CACHE:
        names = sorted(kg.entities, key=len, reverse=True)
        _ENTITY_CACHE[key] = re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in names) + r")(?![\w-])",
                                        re.IGNORECASE)
    return _ENTITY_CACHE[key]
