"""The run-directory layout of a grid, shared by its writer (ablations) and its reader (reports)."""

from __future__ import annotations

import os
from pathlib import Path

from tracestyle.jsonl import safe_child


def cache_root() -> Path:
    """Where converted models, CTranslate2 folders and generated PhantomWiki universes are kept."""
    return Path(os.environ.get("TRACESTYLE_CACHE", Path.home() / ".cache" / "tracestyle"))


def cell_dir(out: Path, student: str, register: str, seed: int | None = None) -> Path:
    """A cell's folder; names become path parts safely (hub ids keep their meaning, '..' cannot escape)."""
    parts = [student.replace("/", "__"), register] + ([f"seed{seed}"] if seed is not None else [])
    return safe_child(out, "/".join(["cells", *parts]))


def eval_dir(out: Path, student: str, register: str, seed: int) -> Path:
    """Where a cell's evaluation lives; the base model is evaluated once per student, whatever the seed."""
    return (cell_dir(out, student, "base") if register == "base" else cell_dir(out, student, register, seed)) / "eval"


def nll_dir(out: Path, student: str, condition: str) -> Path:
    """A student's NLL of a condition's traces before training (one per student and condition, seed-free)."""
    return cell_dir(out, student, condition) / "nll"


def transfer_dir(out: Path, student: str, condition: str, seed: int, name: str) -> Path:
    """A cell's evaluation on a transfer set (problems of another task or KG it never trained on)."""
    return eval_dir(out, student, condition, seed).parent / "transfer" / name


def refine_dir(out: Path, student: str) -> Path:
    """A refine run's record for one student: rounds.json (every round) and best.json."""
    return cell_dir(out, student, "refine")
