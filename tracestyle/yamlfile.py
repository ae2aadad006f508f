"""YAML files users write (grid specs, register.yaml, presets, price tables, taxonomies): read with errors that
name the file and the line, and the line where a key is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracestyle.errors import InputError


def load_yaml(path: str | Path) -> Any:
    """The parsed file; a syntax error names the line where the broken construct starts (the context mark: the
    problem mark is often the end of the file)."""
    import yaml

    p = Path(path)
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "context_mark", None) or getattr(e, "problem_mark", None)
        line = getattr(mark, "line", None)
        raise InputError(f"malformed YAML: {getattr(e, 'problem', None) or e}", str(p),
                         None if line is None else line + 1) from None
    except UnicodeDecodeError:
        raise InputError("undecodable bytes (not UTF-8)", str(p)) from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", str(p)) from None


def key_line(path: str | Path, key: str) -> int | None:
    """The 1-based line where `key:` is written (top level or nested), for an error about its value."""
    try:
        for i, ln in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if ln.lstrip().startswith(f"{key}:"):
                return i
    except (OSError, UnicodeDecodeError):
        pass
    return None
