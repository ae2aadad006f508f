"""Export curated traces as a dataset the ecosystem opens: one config per register, as Parquet (Hub layout:
`load_dataset(DIR, "gold")`, any Parquet reader) and as `datasets` folders (`load_from_disk(DIR / "gold")`),
with a dataset card (README.md) that says what the data is: task, registers and template versions, teacher,
filters and drops by reason, token totals, source licence."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

from tracestyle.errors import InputError, MissingExtraError
from tracestyle.jsonl import atomic_write_text, read_jsonl
from tracestyle.tasks import TASKS, Task

# the columns a trainer needs, flat; nested records stay as JSON strings so every register has one schema
COLUMNS = ("problem_id", "register", "question", "text", "gold", "split", "teacher", "teacher_model", "sample")


def find_curated(src: str | Path) -> Path:
    """A curate folder, or a grid run (its curated/ folder)."""
    p = Path(src)
    for cand in (p, p / "curated"):
        if (cand / "kept.jsonl").exists() and (cand / "manifest.json").exists():
            return cand
    raise InputError("not a curate output or a grid run (no kept.jsonl with a manifest.json)", str(p))


def _record(row: dict) -> dict:
    rec = {k: (None if row.get(k) is None else str(row.get(k)) if k != "sample" else int(row.get(k) or 0))
           for k in COLUMNS}
    rec["difficulty"] = json.dumps(row.get("difficulty") or (row.get("problem") or {}).get("difficulty") or {})
    rec["checks"] = json.dumps(row.get("checks") or {})
    return rec


def export_dataset(src: str | Path, out_dir: str | Path, *, tokenizer: str | None = "smollm2-135m") -> dict:
    try:
        import datasets
    except ImportError:
        raise MissingExtraError("datasets", "hub") from None
    # the export is one short step with its own summary line; datasets' per-shard bars would only add noise
    datasets.disable_progress_bars()
    cur = find_curated(src)
    man = json.loads((cur / "manifest.json").read_text())
    kept = read_jsonl(cur / "kept.jsonl", allow_empty=True)
    if not kept:
        raise InputError("no kept traces to export", str(cur / "kept.jsonl"))
    dropped = read_jsonl(cur / "dropped.jsonl", allow_empty=True) if (cur / "dropped.jsonl").exists() else []
    out = Path(out_dir)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    regs = sorted({r.get("register") or "default" for r in kept})
    tokens: dict[str, int] = {}
    count = None
    if tokenizer:
        from tracestyle.curate.stats import count_tokens_fn
        count = count_tokens_fn(tokenizer)
    sizes = {}
    for reg in regs:
        rows = [_record(r) for r in kept if (r.get("register") or "default") == reg]
        ds = datasets.Dataset.from_list(rows)
        (tmp / "data").mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(tmp / "data" / f"{reg}.parquet"))
        ds.save_to_disk(str(tmp / reg))
        sizes[reg] = len(rows)
        if count:
            tokens[reg] = sum(count([r["text"] for r in rows]))
    gen = cur.parent / "gen" / "manifest.json"
    card = dataset_card(man, regs, sizes, tokens, dropped, json.loads(gen.read_text()) if gen.exists() else None,
                        tokenizer)
    atomic_write_text(tmp / "README.md", card)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return {"out": str(out), "configs": sizes, "tokens": tokens, "dropped": len(dropped)}


def dataset_card(man: dict, regs: list[str], sizes: dict, tokens: dict, dropped: list[dict], gen: dict | None,
                 tokenizer: str | None) -> str:
    conf = man.get("config", {})
    task = conf.get("task", "?")
    licence = TASKS.get(task).licence if task in TASKS.names() else Task.licence
    reasons = Counter("decontam" if str(d.get("reason", "")).startswith("decontam:") else d.get("reason", "?")
                      for d in dropped)
    teacher = (gen or {}).get("config", {})
    t_name = teacher.get("teacher", "?")
    if teacher.get("openai"):
        t_name += f" ({teacher['openai'].get('model')} at temperature {teacher['openai'].get('temperature')})"
    yaml_cfgs = "\n".join(f"- config_name: {r}\n  data_files: data/{r}.parquet" for r in regs)
    lines = [
        "---", f"license: {licence[0]}", "task_categories:", "- text-generation",
        "tags:", "- reasoning-traces", "- tracestyle", "configs:", yaml_cfgs, "---", "",
        f"# Reasoning traces: {task}, {len(regs)} register(s)", "",
        "Curated with [tracestyle](https://github.com/): each trace was written by the teacher below in one register "
        "(a way of writing a reasoning trace) and kept only if it passed every filter.", "",
        "| register | template version | traces | tokens" + (f" ({tokenizer})" if tokenizer else "") + " |",
        "|---|---|---|---|"]
    versions = conf.get("registers", {})
    for r in regs:
        lines.append(f"| {r} | {versions.get(r, '-')} | {sizes[r]} | {tokens.get(r, '-')} |")
    lines += ["", f"- Task: {task}; source licence: {licence[1]}",
              f"- Teacher: {t_name}",
              f"- Filters: {', '.join(conf.get('filters', []))}",
              f"- Kept {sum(sizes.values())}, dropped {len(dropped)}" + (
                  ": " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()) if reasons else ""),
              f"- Made by tracestyle {man.get('versions', {}).get('tracestyle', '?')} (git {man.get('git_sha', '?')})",
              "", "Load one register:", "", "```python", "from datasets import load_dataset, load_from_disk",
              f'ds = load_dataset("path/to/this/folder", "{regs[0]}")   # or load_from_disk("path/{regs[0]}")',
              "```", "", "Columns: " + ", ".join(COLUMNS) + ", difficulty (JSON), checks (JSON: every filter's "
              "verdict)."]
    return "\n".join(lines) + "\n"


def push_calls(out_dir: str | Path, repo: str, *, private: bool = False) -> list[dict]:
    """The uploads `--push-to-hub` makes: the folder (Parquet per config + the card) as one dataset repo."""
    return [{"fn": "create_repo", "repo_id": repo, "repo_type": "dataset", "private": private, "exist_ok": True},
            {"fn": "upload_folder", "repo_id": repo, "repo_type": "dataset", "folder_path": str(out_dir),
             "allow_patterns": ["README.md", "data/*.parquet"]}]


def push_to_hub(out_dir: str | Path, repo: str, *, private: bool = False, api=None) -> None:
    from huggingface_hub import HfApi

    api = api or HfApi()
    for call in push_calls(out_dir, repo, private=private):
        fn = call.pop("fn")
        getattr(api, fn)(**call)
