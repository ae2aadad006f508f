"""Measurements kept per machine: a JSON file of results by key under the cache folder, so a probe (which engine,
how many threads) runs once per machine and setting, and every later run reads its answer. Keys name what the
result depends on (CPU, flags, library versions, student, precision...), so another machine or version measures
again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from tracestyle.jsonl import atomic_write_text
from tracestyle.layout import cache_root
from tracestyle.precision import cpu_facts


def path(name: str) -> Path:
    """The file that keeps the measurements called `name` (TRACESTYLE_CACHE, else ~/.cache/tracestyle)."""
    return cache_root() / f"{name}.json"


def machine_key(*parts) -> str:
    """A measurement's key: the CPU's model, its bf16/AMX flags and torch's version, then what else the answer
    depends on (cores or threads, student, precision, batch...)."""
    import torch

    f = cpu_facts()
    return "|".join([f["cpu"], ",".join(f["flags"]), f"torch={torch.__version__}", *map(str, parts)])


def _load(f: Path) -> dict:
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):      # none yet, or a file cut short by a crash: measure again
        return {}


def measured(name: str, key: str, measure: Callable[[], dict]) -> dict:
    """The result kept under `key`, with "cached": True; else `measure()`'s, kept, with "cached": False."""
    f = path(name)
    kept = _load(f)
    if key in kept:
        return {**kept[key], "cached": True}
    got = measure()
    kept = _load(f)            # another process may have added its own while this one measured
    kept[key] = got
    f.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(f, json.dumps(kept, indent=1))
    return {**got, "cached": False}
