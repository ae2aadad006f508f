"""Stage manifests: written last, so a manifest exists only for a complete stage; matching ones skip reruns."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from tracestyle import __version__
from tracestyle.jsonl import write_json

_PACKAGES = ("torch", "transformers", "peft", "trl", "jinja2", "httpx", "polars")
_SECRET_WORDS = ("key", "token", "secret", "password", "authorization", "credential", "cookie")
# values that are credentials whatever their key is called
_SECRET_VALUE = re.compile(r"^(?:Bearer\s|Basic\s|sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{20,})")


def hash_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_obj(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _versions() -> dict[str, str]:
    out = {"tracestyle": __version__, "python": platform.python_version()}
    for p in _PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def _git_sha() -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                           cwd=Path(__file__).parent)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def scrub(config: dict) -> dict:
    """Drop anything that looks like a credential: manifests are shared, keys must never land in them."""
    clean = {}
    for k, v in config.items():
        if isinstance(v, dict):
            clean[k] = scrub(v)
        elif any(w in k.lower() for w in _SECRET_WORDS) and not k.lower().endswith(("_env", "tokens", "tokenizer")):
            clean[k] = "<redacted>"
        elif isinstance(v, str) and _SECRET_VALUE.match(v):
            clean[k] = "<redacted>"
        else:
            clean[k] = v
    return clean


def stage_key(config: dict, inputs: list[str | Path]) -> str:
    return hash_obj({"config": scrub(config), "inputs": [hash_file(p) for p in inputs]})


def write_manifest(out_dir: str | Path, stage: str, config: dict, inputs: list[str | Path],
                   counts: dict, *, started: float, extra: dict | None = None) -> dict:
    man = {
        "stage": stage,
        "key": stage_key(config, inputs),
        "config": scrub(config),
        "inputs": {str(p): hash_file(p) for p in inputs},
        "counts": counts,
        "seconds": round(time.time() - started, 3),
        "versions": _versions(),
        "git_sha": _git_sha(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if extra:
        man.update(extra)
    write_json(Path(out_dir) / "manifest.json", man)
    return man


def is_complete(out_dir: str | Path, config: dict, inputs: list[str | Path]) -> bool:
    """Whether the folder holds this stage's complete outputs for `config` and `inputs`; if not, its stale
    manifest is removed (the caller is about to redo the stage)."""
    p = Path(out_dir) / "manifest.json"
    if not p.exists():
        return False
    try:
        man = json.loads(p.read_text())
    except ValueError:
        return False
    # a stage that recorded failed requests is done but not complete: a rerun retries just those
    if man.get("key") == stage_key(config, inputs) and man.get("complete", True):
        return True
    # every caller redoes the stage now: an old manifest beside half-rewritten outputs would vouch for them (export
    # and reports read a folder with a manifest as complete), so it goes before the first output is touched
    p.unlink(missing_ok=True)
    return False
