"""GSM8K task source: problems with gold number, reference solution and parsed calculator steps."""

from __future__ import annotations

import re
from pathlib import Path

from tracestyle.answers.numbers import format_number, parse_number
from tracestyle.errors import InputError, MissingExtraError
from tracestyle.jsonl import read_jsonl

CALC = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
# The default data folder: ../shared/data/gsm8k beside the checkout (the project's convention), or $TRACESTYLE_GSM8K.
_DEFAULT_DIRS = ("shared/data/gsm8k", "../shared/data/gsm8k", "../../shared/data/gsm8k")


def default_dir() -> Path:
    import os

    env = os.environ.get("TRACESTYLE_GSM8K")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in [Path.cwd(), *here.parents]:
        for rel in _DEFAULT_DIRS:
            cand = (base / rel).resolve()
            if (cand / "test.jsonl").exists():
                return cand
    raise InputError("GSM8K data not found: pass --data DIR (with train.jsonl/test.jsonl) or set TRACESTYLE_GSM8K")


def parse_solution(solution: str) -> tuple[list[dict], str]:
    """Split a GSM8K reference solution into steps (line text, calculator expression, result) and the final answer."""
    if "####" not in solution:
        raise ValueError("no '####' final-answer line")
    body, final = solution.rsplit("####", 1)
    steps = []
    for line in body.strip().split("\n"):
        line = line.strip()
        if not line:
            continue
        calcs = [(m.group(1).strip(), m.group(2).strip()) for m in CALC.finditer(line)]
        steps.append({
            "text": CALC.sub("", line).strip(),
            "calcs": [{"expr": e, "result": r} for e, r in calcs],
        })
    return steps, final.strip()


def problem_from_row(row: dict, idx: int, split: str, path: str, source: str = "") -> dict:
    for f in ("question", "answer"):
        if not isinstance(row.get(f), str) or not row[f].strip():
            raise InputError("missing or not a non-empty string", path, row.get("__line__"), f)
    try:
        steps, final = parse_solution(row["answer"])
    except ValueError as e:
        raise InputError(str(e), path, row.get("__line__"), "answer") from None
    value = parse_number(final)
    if value is None:
        raise InputError(f"final answer '{final}' is not a number", path, row.get("__line__"), "answer")
    return {
        "id": f"gsm8k-{source or split}-{idx}",
        "task": "gsm8k",
        "split": split,
        "source_index": idx,
        "question": " ".join(row["question"].split()),
        "gold": format_number(value),
        "solution": row["answer"],
        "steps": steps,
        "difficulty": {"steps": len(steps)},
    }


def load_gsm8k(split: str = "test", data: str | Path | None = None, n: int | None = None,
               offset: int = 0) -> list[dict]:
    """Load GSM8K from a local JSONL folder/file, or from the hub when `data` is a `hf:` dataset id."""
    if split not in ("train", "test", "test_socratic"):
        raise InputError(f"unknown GSM8K split '{split}' (train, test, test_socratic)", field="split")
    if isinstance(data, str) and data.startswith("hf:"):
        return _load_hub(data[3:], split, n, offset)
    p = Path(data) if data else default_dir()
    path = p / f"{split}.jsonl" if p.is_dir() else p
    rows = read_jsonl(path, required=("question", "answer"))
    rows = rows[offset: offset + n if n else None]
    return [problem_from_row(r, offset + i, "eval" if split.startswith("test") else "train", str(path), split)
            for i, r in enumerate(rows)]


def _load_hub(dataset_id: str, split: str, n: int | None, offset: int) -> list[dict]:
    try:
        import datasets
    except ImportError:
        raise MissingExtraError("datasets", "hub") from None
    ds = datasets.load_dataset(dataset_id, "main", split="test" if split.startswith("test") else "train")
    rows = [dict(r) for r in ds][offset: offset + n if n else None]
    return [problem_from_row(r, offset + i, "eval" if split.startswith("test") else "train", dataset_id, split)
            for i, r in enumerate(rows)]
