"""Loading KGs from JSON in the shapes other projects export, with every error of a file reported at once.

Accepted shapes (see README, "Bring your own KG"):
- entities: [{name, type, id?, aliases?}] | [name, ...] | {name: type} | absent (read off the edges, type "entity")
- relations: [{name, head_type?, tail_type?, phrasings?, inverse?, inverse_phrasings?, symmetric?}] | {name: {...}}
  | absent (one relation per name used by an edge, phrased by its name). head/tail types may be a string, a list or
  absent (any type). A phrasing shared by both directions makes the relation symmetric.
- edges: [[head, relation, tail]] | [{head|source|subject|subj|…, relation|predicate|pred|…, tail|target|object|obj|…}]
  (the column names triples.py reads in tables);
  an edge object may carry `head_type` / `tail_type` (read when `entities` is absent)
- networkx's node-link JSON: `nodes` [{id, name|label?, type?}] and `links` (or `edges`) [{source, target, relation}]
Edges may name entities by `id` or by name. Files that are tables of edges (.csv, .tsv, .txt, .jsonl) are read by
tasks/kg/triples.py into the same shape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tracestyle.errors import InputError
from tracestyle.tasks.kg.graph import KnowledgeGraph, Relation
from tracestyle.tasks.kg.triples import HEAD_NAMES, REL_NAMES, TAIL_NAMES, read_edge_lines, read_table

CORE_KEYS = {"entities", "relations", "edges"}
# metadata other projects put beside the graph: kept out of the way, never an error
META_KEYS = {"name", "version", "domain", "description", "license", "source", "metadata", "created", "author",
             "directed", "schema", "id", "title", "citation", "url", "multigraph", "graph"}
TABLE_DELIMITERS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
MAX_ERRORS = 20


class _Errors:
    """Collects errors with their lines, so a user fixes a file in one pass instead of one error per run."""

    def __init__(self, path: str, text: str, lines: dict[tuple, int] | None = None) -> None:
        self.path, self.items = path, []
        self.lines = lines if lines is not None else _value_lines(text) if text else {}
        for where, ln in list(self.lines.items()):   # node-link names: nodes = entities, links = edges
            alias = {"nodes": "entities", "links": "edges"}.get(where[0]) if where else None
            if alias and (alias, *where[1:]) not in self.lines:
                self.lines[(alias, *where[1:])] = ln

    def add(self, where: tuple, field: str, msg: str) -> None:
        self.add_at(self.line(where), field, msg)

    def add_at(self, line: int | None, field: str, msg: str) -> None:
        if len(self.items) < MAX_ERRORS + 1:
            self.items.append((line, field, msg))

    def line(self, where: tuple) -> int | None:
        while where and where not in self.lines:
            where = where[:-1]
        return self.lines.get(where)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        if len(self.items) == 1:
            line, field, msg = self.items[0]
            raise InputError(msg, self.path, line, field)
        shown = self.items[:MAX_ERRORS]
        more = " (and more; showing the first %d)" % MAX_ERRORS if len(self.items) > MAX_ERRORS else ""
        body = "\n".join(f"  {self.path}:{ln or '?'}: field '{f}': {m}" for ln, f, m in shown)
        raise InputError(f"{len(shown)} problems in the KG{more}:\n{body}", self.path, shown[0][0])


def _value_lines(text: str) -> dict[tuple, int]:
    """Line of every value down to depth 3 (("edges", 7, "head") etc.), read off the text itself, so an error
    points at the offending edge however the file is formatted."""
    dec, n, out = json.JSONDecoder(), len(text), {}

    def skip(i: int) -> int:
        while i < n and text[i] in " \t\r\n":
            i += 1
        return i

    def walk(i: int, path: tuple) -> int:
        i = skip(i)
        out[path] = text.count("\n", 0, i) + 1
        if len(path) < 3 and text[i] in "{[":
            close, i, k = ("}" if text[i] == "{" else "]"), skip(i + 1), 0
            if text[i] == close:
                return i + 1
            while True:
                if close == "}":
                    key, i = dec.raw_decode(text, skip(i))
                    i = walk(skip(i) + 1, path + (key,))
                else:
                    i = walk(i, path + (k,))
                    k += 1
                i = skip(i)
                if text[i] == ",":
                    i += 1
                    continue
                return i + 1
        return dec.raw_decode(text, i)[1]

    try:
        walk(0, ())
    except (ValueError, IndexError):
        return {}
    return out


def load_kg(path: str | Path) -> KnowledgeGraph:
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
    suffix = path.suffix.lower()
    if suffix in TABLE_DELIMITERS or suffix in (".jsonl", ".ndjson"):
        data, lines, problems = read_edge_lines(text) if suffix in (".jsonl", ".ndjson") else \
            read_table(text, TABLE_DELIMITERS[suffix])
        return kg_from_json(data, str(path), lines=lines, problems=problems)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"malformed JSON: {e.msg} (a table of edges is read from .csv, .tsv or .jsonl files)",
                         str(path), e.lineno) from None
    return kg_from_json(data, str(path), text)


def _types(v) -> frozenset[str] | None | str:
    if v is None or v in ("*", "any"):
        return None
    if isinstance(v, str):
        return frozenset([v])
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return None if "*" in v else frozenset(v)
    return "bad"


def _entities(data: dict, err: _Errors) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(name -> type, id -> name, alias -> name)."""
    ents, ids, aliases = {}, {}, {}
    raw = data.get("entities")
    if raw is None:
        return ents, ids, aliases
    items = list(raw.items()) if isinstance(raw, dict) else list(enumerate(raw)) if isinstance(raw, list) else None
    if items is None:
        err.add(("entities",), "entities", "expected a list or a mapping of name to type")
        return ents, ids, aliases
    for key, e in items:
        where = ("entities", key)
        if isinstance(raw, dict):
            name, etype, eid, al = key, e if isinstance(e, str) else (e or {}).get("type"), None, []
        elif isinstance(e, str):
            name, etype, eid, al = e, "entity", None, []
        elif isinstance(e, dict):
            name, etype, eid, al = e.get("name", e.get("label")), e.get("type", "entity"), e.get("id"), \
                e.get("aliases") or []
        else:
            err.add(where, f"entities[{key}]", "expected {name, type} or a name")
            continue
        if not isinstance(name, str) or not name.strip():
            err.add(where, f"entities[{key}].name", "missing or empty entity name")
            continue
        if not isinstance(etype, str):
            err.add(where, f"entities[{key}].type", "expected a string type")
            continue
        if name in ents:
            err.add(where, f"entities[{key}].name", f"duplicate entity '{name}'")
            continue
        ents[name] = etype
        if eid is not None:
            ids[str(eid)] = name
        aliases.update({a: name for a in al if isinstance(a, str) and a.strip() and a != name})
    return ents, ids, aliases


def _edge_parts(e) -> tuple | None:
    if isinstance(e, list) and len(e) == 3:
        return tuple(e)
    if isinstance(e, dict):
        pick = [next((e[k] for k in keys if k in e), None) for keys in (HEAD_NAMES, REL_NAMES, TAIL_NAMES)]
        return tuple(pick) if all(x is not None for x in pick) else None
    return None


def _words(part: str) -> str:
    part = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", part)          # birthPlace -> birth Place
    return " ".join(re.sub(r"[_\-.]+", " ", part).split()).lower() if part != part.upper() or "_" in part else part


def _default_phrasing(name: str, seen: dict) -> str:
    """A relation without phrasings is phrased by its name: the last part of a URI or path
    ("http://dbpedia.org/ontology/birthPlace", "/people/person/nationality" as in FB15k), camelCase and
    underscores as words; more of the path when the short form is another relation's phrasing."""
    parts = [p for p in re.split(r"[/#:]", name) if p]
    if not parts:
        return name
    for k in range(1, len(parts) + 1):
        words = " ".join(_words(p) for p in parts[-k:])
        if seen.get(words.lower(), name) == name:
            return words
    return name


def _relation(name: str, r: dict, where: tuple, err: _Errors, seen: dict) -> Relation | None:
    if not isinstance(r, dict):
        err.add(where, str(where[-1]), "expected a mapping")
        return None
    phr = r.get("phrasings") or [_default_phrasing(name, seen)]
    inv = r.get("inverse_phrasings", [])
    if isinstance(phr, str):
        phr = [phr]
    if isinstance(inv, str):
        inv = [inv]
    if not isinstance(phr, list) or not isinstance(inv, list) or not phr or \
            not all(isinstance(p, str) and p.strip() for p in phr + inv):
        err.add(where, f"relations[{where[-1]}].phrasings", "needs at least one non-empty phrasing")
        return None
    symmetric = bool(r.get("symmetric")) or bool({p.lower() for p in phr} & {p.lower() for p in inv})
    if symmetric:
        phr, inv = list(dict.fromkeys(phr + inv)), []
    for p in phr + inv:
        other = seen.get(p.lower())
        if other is not None and other != name:
            err.add(where, f"relations[{where[-1]}]", f"phrasing '{p}' is used by two relations ('{other}' and "
                    f"'{name}'); traces could not be parsed unambiguously")
        seen[p.lower()] = name
    ht, tt = _types(r.get("head_type")), _types(r.get("tail_type"))
    if "bad" in (ht, tt):
        err.add(where, f"relations[{where[-1]}].head_type", "a type is a string, a list of strings, or '*'")
        return None
    return Relation(name, ht, tt, tuple(phr), str(r.get("inverse", name + "_inverse")), tuple(inv), symmetric)


def _node_entity(n):
    """A node-link node as an entity: named by `name`, else `label`, else its id (networkx ids are often ints)."""
    if not isinstance(n, dict):
        return n
    name = n.get("name", n.get("label", n.get("id")))
    return {"name": str(name) if isinstance(name, int) else name, "id": n.get("id"),
            "type": n.get("type", "entity"), "aliases": n.get("aliases")}


def _node_link(data: dict) -> dict:
    """networkx's node-link JSON (`nodes`, `links`) in the loader's own keys."""
    out = {k: v for k, v in data.items() if k not in ("nodes", "links")}
    if "links" in data and "edges" not in data:
        out["edges"] = data["links"]
    if "nodes" in data and "entities" not in data:
        nodes = data["nodes"]
        out["entities"] = [_node_entity(n) for n in nodes] if isinstance(nodes, list) else nodes
    return out


def kg_from_json(data: dict, path: str = "<kg>", text: str = "", *, lines: dict[tuple, int] | None = None,
                 problems=()) -> KnowledgeGraph:
    """`lines`/`problems`: for a file that was not JSON (triples.py), the file line of each edge and what its
    reader already found wrong, reported with the rest."""
    err = _Errors(path, text, lines)
    for line, fld, msg in problems:
        err.add_at(line, fld, msg)
    if not isinstance(data, dict):
        raise InputError("top level must be an object with 'edges' (and optionally 'entities', 'relations')", path, 1)
    if "nodes" in data or "links" in data:
        data = _node_link(data)
    for k in sorted(set(data) - CORE_KEYS - META_KEYS):
        err.add((k,), k, f"unknown key (allowed: {', '.join(sorted(CORE_KEYS))}; metadata tolerated: "
                f"{', '.join(sorted(META_KEYS))})")
    if not isinstance(data.get("edges"), list) or not data["edges"]:
        err.add(("edges",), "edges", "missing or empty: a KG needs a list of edges")
        err.raise_if_any()
    ents, ids, aliases = _entities(data, err)
    infer_entities = data.get("entities") is None
    raw_rel = data.get("relations")
    rels: dict[str, Relation] = {}
    seen_phr: dict[str, str] = {}
    if raw_rel is not None:
        items = list(raw_rel.items()) if isinstance(raw_rel, dict) else \
            [(r.get("name") if isinstance(r, dict) else None, r, i) for i, r in enumerate(raw_rel)] \
            if isinstance(raw_rel, list) else None
        if items is None:
            err.add(("relations",), "relations", "expected a list or a mapping")
            items = []
        for item in items:
            name, r = item[0], item[1]
            where = ("relations", item[2] if len(item) == 3 else name)
            if not isinstance(name, str) or not name.strip():
                err.add(where, f"relations[{where[-1]}].name", "missing relation name")
                continue
            if name in rels:
                err.add(where, f"relations[{where[-1]}].name", f"duplicate relation '{name}'")
                continue
            rel = _relation(name, r, where, err, seen_phr)
            if rel is not None:
                rels[name] = rel
    edges: set[tuple[str, str, str]] = set()
    inferred_type: dict[str, str | None] = {}   # entities read off the edges: the type an edge gave, if any
    for i, e in enumerate(data["edges"]):
        where, fld = ("edges", i), f"edges[{i}]"
        parts = _edge_parts(e)
        if parts is None or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in parts):
            err.add(where, fld, "edge must be [head, relation, tail] or {head, relation, tail}")
            continue
        h, r, t = (str(x) for x in parts)
        h, t = ids.get(h, h), ids.get(t, t)
        if r not in rels:
            if raw_rel is not None:
                err.add(where, fld, f"unknown relation '{r}' (declared: {', '.join(sorted(rels)) or 'none'})")
                continue
            rels[r] = _relation(r, {}, ("relations",), err, seen_phr)
        rel = rels[r]
        bad = False
        given = {role: e.get(f"{role}_type") for role in ("head", "tail")} if isinstance(e, dict) else {}
        for ent, role, want in ((h, "head", rel.head_types), (t, "tail", rel.tail_types)):
            typed = given.get(role) if isinstance(given.get(role), str) and given[role].strip() else None
            if ent not in ents:
                if infer_entities:
                    ents[ent] = typed or "entity"
                    inferred_type[ent] = typed
                else:
                    err.add(where, fld, f"dangling edge: {role} '{ent}' is not an entity")
                    bad = True
                    continue
            elif infer_entities and typed and inferred_type.get(ent) != typed:
                if inferred_type.get(ent) is not None:
                    err.add(where, f"{fld}.{role}_type", f"'{ent}' is typed '{typed}' here and "
                            f"'{inferred_type[ent]}' on an earlier edge")
                    bad = True
                    continue
                ents[ent] = inferred_type[ent] = typed
            if want is not None and ents[ent] not in want:
                err.add(where, fld, f"{role} '{ent}' has type '{ents[ent]}', relation '{r}' wants "
                        f"{' or '.join(sorted(want))} (list several types, or leave {role}_type out for any)")
                bad = True
        if h == t:
            err.add(where, fld, f"self-loop on '{h}'")
            bad = True
        if not bad:
            edges.add((h, r, t))
    err.raise_if_any()
    name = data.get("name", data.get("domain", Path(path).stem))
    return KnowledgeGraph(str(name), ents, rels, edges, aliases)
