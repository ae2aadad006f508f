"""Which KG a problem was made from, recorded so it resolves again later: a built-in name, or a file's path plus
the content hash of the graph it held. Every command takes the same `--kg` (a built-in name or a .json path)."""

from __future__ import annotations

from pathlib import Path

from tracestyle.errors import InputError
from tracestyle.tasks.kg.domains import BUILTIN
from tracestyle.tasks.kg.graph import KnowledgeGraph
from tracestyle.tasks.kg.loader import load_kg

_CACHE: dict[tuple, KnowledgeGraph] = {}


def _file_key(path: Path) -> tuple:
    st = path.stat()
    return ("file", str(path.resolve()), st.st_mtime_ns, st.st_size)


def get_kg(spec: str) -> KnowledgeGraph:
    """A built-in name (devops, world) or a path to a KG .json; loaded once per process (per file version)."""
    if spec in BUILTIN:
        key: tuple = ("builtin", spec)
        if key not in _CACHE:
            _CACHE[key] = BUILTIN[spec]()
        return _CACHE[key]
    p = Path(spec)
    if p.suffix == ".json" or p.exists():
        if not p.exists():
            raise InputError("KG file not found", str(p), field="kg")
        key = _file_key(p)
        if key not in _CACHE:
            _CACHE[key] = load_kg(p)
        return _CACHE[key]
    raise InputError(f"unknown KG '{spec}' (built in: {', '.join(BUILTIN)}; or a path to a KG .json)", field="kg")


def kg_ref(spec: str, kg: KnowledgeGraph) -> dict:
    builtin = spec in BUILTIN
    return {"name": kg.name, "builtin": spec if builtin else None,
            "path": None if builtin else str(Path(spec).resolve()), "sha256": kg.content_hash}


def resolve_kg(problem: dict) -> KnowledgeGraph:
    """The KG a problem was generated from. Raises InputError (field 'kg') when it cannot be found or the file
    now holds a different graph; the caller adds file and line."""
    ref = problem.get("kg")
    if isinstance(ref, dict):
        spec = ref.get("builtin") or ref.get("path")
        if not spec:
            raise InputError("the problem's KG reference has neither 'builtin' nor 'path'", field="kg")
        if ref.get("path") and not Path(ref["path"]).exists():
            raise InputError(f"the problem's KG file {ref['path']} is gone; pass --kg PATH to point at it",
                             field="kg")
        kg = get_kg(spec)
        if ref.get("sha256") and ref["sha256"] != kg.content_hash:
            raise InputError(f"KG '{spec}' has changed since the problem was made (content hash "
                             f"{kg.content_hash[:12]} != {ref['sha256'][:12]}); regenerate the problems or pass "
                             "--kg with the original file", field="kg")
        return kg
    domain = problem.get("domain")
    if isinstance(domain, str) and domain:
        return get_kg(domain)   # files written before references existed
    raise InputError("KG problem without a 'kg' reference or 'domain'; pass --kg", field="kg")


def point_at(problems: list[dict], spec: str) -> list[dict]:
    """--kg on a later command: every KG problem resolves through this KG (e.g. the file moved)."""
    kg = get_kg(spec)
    ref = kg_ref(spec, kg)
    return [{**p, "kg": ref, "domain": kg.name} if p.get("task") == "kg" else p for p in problems]
