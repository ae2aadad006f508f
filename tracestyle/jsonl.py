"""JSONL I/O: strict reading with file/line/field errors, atomic writes, crash-safe append logs."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tracestyle.errors import InputError


def _reject_constant(name: str) -> float:
    # json accepts NaN/Infinity by default; they poison answers and statistics silently.
    raise ValueError(f"non-finite number {name}")


def loads_strict(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def read_jsonl(path: str | Path, required: Iterable[str] = (), allow_empty: bool = False) -> list[dict]:
    """Read a JSONL file of objects; any bad line raises InputError naming file, line and field."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", str(path))
    if path.is_dir():
        raise InputError("is a directory, expected a JSONL file", str(path))
    required = list(required)
    rows: list[dict] = []
    raw = path.read_bytes()
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"undecodable bytes (not UTF-8) at byte {e.start}", str(path), lineno) from None
        try:
            obj = loads_strict(text)
        except ValueError as e:
            raise InputError(f"malformed JSON: {e}", str(path), lineno) from None
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object, got {type(obj).__name__}", str(path), lineno)
        for f in required:
            if f not in obj or obj[f] is None:
                raise InputError("missing required field", str(path), lineno, f)
        obj["__line__"] = lineno
        rows.append(obj)
    if not rows and not allow_empty:
        raise InputError("empty file: no JSON rows", str(path))
    return rows


def strip_meta(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("__")}


def dumps(row: dict) -> str:
    return json.dumps(strip_meta(row), ensure_ascii=False, allow_nan=False, sort_keys=False)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via temp file + fsync + rename, so readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    lines = [dumps(r) for r in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


class AppendLog:
    """Append-only JSONL that survives kill -9: a torn last line is cut off when reopened."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []
        if self.path.exists():
            data = self.path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                with open(self.path, "r+b") as f:
                    f.truncate(end)
            for line in data[:end].split(b"\n"):
                if line.strip():
                    try:
                        self.rows.append(json.loads(line))
                    except ValueError:
                        continue  # a line torn mid-write in an older crash: its work is redone
        self._f = open(self.path, "a", encoding="utf-8")

    def append(self, row: dict) -> None:
        self._f.write(dumps(row) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.rows.append(row)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> AppendLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def safe_child(root: str | Path, name: str) -> Path:
    """Join a user-given name under root, refusing paths that escape it."""
    root_r = Path(root).resolve()
    p = (root_r / name).resolve()
    if p != root_r and root_r not in p.parents:
        raise InputError(f"path '{name}' escapes the run directory {root}")
    return p
