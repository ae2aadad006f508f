"""Free-space checks before large writes, and a size cap on caches of converted models.

Why: a full fine-tuning checkpoint of a 135M model is ~1.6 GB (float32 weights plus two Adam moments) and every
trained adapter evaluated on a CPU is converted once (0.5–1.1 GB per bundled student). A disk that filled half-way
through such a write surfaced as a serializer traceback, and converted models piled up with nothing removing them
(24 GB after a few dozen test runs).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tracestyle.errors import InputError

MARGIN = 64 << 20        # headroom left for logs, manifests and the rest of the run
USED_MARK = ".last-used"
STALE_TEMP_S = 3600      # a conversion's temporary folder untouched this long belongs to a dead process


class DiskSpaceError(InputError):
    """Not enough free space for a write; says where, how much is needed and how much is left."""


def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MB"


def _existing(path: Path) -> Path:
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def require_free(path: str | Path, need: int, what: str) -> None:
    """Raise DiskSpaceError before writing `need` bytes under `path` when the disk cannot hold them."""
    where = _existing(Path(path))
    free = shutil.disk_usage(where).free
    if free < need + MARGIN:
        raise DiskSpaceError(f"{what} needs about {_mb(need + MARGIN)} free, only {_mb(free)} left on that disk; "
                             "free some space (old runs, the model cache: TRACESTYLE_CACHE) and run again "
                             "(finished work is kept)", str(path))


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def mark_used(entry: Path) -> None:
    """Record a use of a cache entry (the LRU order of `prune_cache`)."""
    try:
        (entry / USED_MARK).touch()
    except OSError:
        pass


def _last_used(entry: Path) -> float:
    mark = entry / USED_MARK
    return mark.stat().st_mtime if mark.exists() else entry.stat().st_mtime


def cache_cap_bytes(env: str, default_gb: float) -> int:
    raw = os.environ.get(env)
    try:
        gb = float(raw) if raw not in (None, "") else default_gb
    except ValueError:
        raise InputError(f"must be a number of GB, got {raw!r}", field=env) from None
    return int(gb * (1 << 30))


def prune_cache(root: Path, cap: int, *, keep: Path | None = None, is_temp=lambda p: False) -> list[Path]:
    """Remove the least recently used entries under `root` until they total at most `cap` bytes. `keep` (the entry
    in use) always stays; temporary folders of conversions that died more than an hour ago go first."""
    if not root.is_dir():
        return []
    removed, entries = [], []
    now = time.time()
    for e in root.iterdir():
        if not e.is_dir():
            continue
        if is_temp(e):
            if now - e.stat().st_mtime > STALE_TEMP_S:
                shutil.rmtree(e, ignore_errors=True)
                removed.append(e)
            continue
        entries.append(e)
    sizes = {e: tree_size(e) for e in entries}
    total = sum(sizes.values())
    for e in sorted(entries, key=_last_used):
        if total <= cap:
            break
        if keep is not None and e.resolve() == Path(keep).resolve():
            continue
        shutil.rmtree(e, ignore_errors=True)
        total -= sizes[e]
        removed.append(e)
    return removed
