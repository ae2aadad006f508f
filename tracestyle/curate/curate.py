"""The curate stage: read traces from any source, apply filters, write kept.jsonl and dropped.jsonl."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tracestyle.curate.decontam import NgramIndex, reference_docs
from tracestyle.curate.filters import FILTERS, FilterContext, norm_text, visible
from tracestyle.errors import InputError
from tracestyle.jsonl import finite_number, read_jsonl, strip_meta, write_jsonl
from tracestyle.manifest import is_complete, write_manifest
from tracestyle.progress import progress_bar
from tracestyle.prompts import Register
from tracestyle.tasks import get_task, point_at
from tracestyle.tasks.gsm8k.source import load_gsm8k
from tracestyle.verdict import Verdict

DEFAULT_FIELDS = {"id": "problem_id", "question": "question", "gold": "gold", "text": "text", "register": "register"}
ROW_FILTERS = ("length", "correct", "kg_path", "steps", "compliance", "judge")


def _gold_value(g) -> bool:
    return not isinstance(g, bool) and bool(isinstance(g, str) and g.strip() or finite_number(g))


def normalize_rows(rows: list[dict], path: str, task: str, fields: dict, problems: dict[str, dict], *,
                   need_register: bool) -> list[dict]:
    """Map user field names onto ours and check types, naming file, line and field on the first problem."""
    f = {**DEFAULT_FIELDS, **(fields or {})}
    out = []
    for r in rows:
        line = r.get("__line__")
        for key in ("question", "gold", "text"):
            if f[key] not in r or r[f[key]] is None:
                raise InputError("missing required field", path, line, f[key])
        if not isinstance(r[f["text"]], str):
            raise InputError(f"expected a string, got {type(r[f['text']]).__name__}", path, line, f["text"])
        if not isinstance(r[f["question"]], str) or not r[f["question"]].strip():
            raise InputError("expected a non-empty string", path, line, f["question"])
        gold = r[f["gold"]]
        if isinstance(gold, list) and gold and all(_gold_value(g) for g in gold):
            gold = "|".join(str(g) for g in gold)      # an answer set, as gold_list reads it back
        elif not _gold_value(gold):
            raise InputError("expected a non-empty string, a finite number or a list of them", path, line, f["gold"])
        if need_register and not isinstance(r.get(f["register"]), str):
            raise InputError("missing required field (the compliance filter needs it)", path, line, f["register"])
        pid = r.get(f["id"], f"line-{line}")
        if not isinstance(pid, (str, int)) or isinstance(pid, bool):
            raise InputError("expected a string or integer id", path, line, f["id"])
        row = {**r, "problem_id": str(pid), "question": r[f["question"]], "gold": str(gold), "text": r[f["text"]],
               "register": r.get(f["register"])}
        prob = r.get("problem") if isinstance(r.get("problem"), dict) else problems.get(str(pid))
        if prob is None:
            prob = {"id": str(pid), "task": task, "question": row["question"], "gold": row["gold"]}
        if prob.get("task") != task:
            raise InputError(f"row is a '{prob.get('task')}' problem but --task is '{task}'", path, line, "task")
        row["problem"] = prob
        row["task"] = task
        out.append(row)
    return out


@dataclass
class CurateConfig:
    task: str
    filters: list[str]
    registers: dict[str, Register] = field(default_factory=dict)
    fields: dict = field(default_factory=dict)          # our field name -> the input's field name
    problems_path: str | Path | None = None             # join traces made elsewhere to their problems by id
    eval_path: str | Path | None = None                 # the overlap filter drops questions found here
    kg: str | None = None                               # --kg: the KG every KG problem resolves through
    min_chars: int = 1
    max_chars: int = 20000
    judge: object = None                                # a callback row -> Verdict (the LLM judge)
    decontam_n: int = 13                                # word n-gram size of the decontam filter (8-13)
    decontam_gsm8k: str | Path | None = None            # a GSM8K folder whose test split decontam also checks
    parquet: bool = False
    thinking: str = "keep"      # a reasoning teacher's <think> block in kept rows: keep it, or drop it (train on
                                # the register-styled answer alone; the drop is recorded per row)

    def public(self) -> dict:
        return {"task": self.task, "filters": self.filters, "fields": self.fields, "kg": self.kg,
                "registers": {n: r.version for n, r in self.registers.items()}, "min_chars": self.min_chars,
                "max_chars": self.max_chars, "judge": bool(self.judge), "thinking": self.thinking,
                **({"decontam_n": self.decontam_n} if "decontam" in self.filters else {})}


def curate(in_path: str | Path, out_dir: str | Path, cfg: CurateConfig, *, quiet: bool = False) -> dict:
    """Filter the traces in in_path into out_dir/kept.jsonl and dropped.jsonl (each drop with its reasons)."""
    t0 = time.time()
    task = cfg.task
    get_task(task)
    filters = cfg.filters
    for name in filters:
        FILTERS.get(name)
    inputs = [p for p in (in_path, cfg.problems_path, cfg.eval_path, cfg.kg) if p and Path(p).exists()]
    conf = cfg.public()
    out = Path(out_dir)
    if is_complete(out, conf, inputs):
        return {"skipped": True}
    # read and validate everything before writing anything, so bad input leaves the output folder untouched
    problems = {}
    if cfg.problems_path:
        rows_p = read_jsonl(cfg.problems_path, required=("id", "question", "gold"))
        problems = {str(p["id"]): strip_meta(p) for p in rows_p}
    rows = normalize_rows(read_jsonl(in_path), str(in_path), task, cfg.fields or {}, problems,
                          need_register="compliance" in filters)
    if cfg.kg:
        for r, p in zip(rows, point_at([r["problem"] for r in rows], cfg.kg)):
            r["problem"] = p
    if {"kg_path", "correct"} & set(filters):
        # a row whose problem cannot be scored (its KG is gone) is an input error, never a silent drop
        get_task(task).prepare([{**r["problem"], "__line__": r.get("__line__")} for r in rows], where=str(in_path),
                               need_trace_checks="kg_path" in filters)
    ctx = FilterContext(registers=cfg.registers, min_chars=cfg.min_chars, max_chars=cfg.max_chars, judge=cfg.judge)
    if cfg.eval_path:
        ctx.eval_questions = {norm_text(r["question"]) for r in read_jsonl(cfg.eval_path, required=("question",))}
    if "judge" in filters and hasattr(cfg.judge, "prefetch"):
        # every row in one batch, its cache in the output folder (reused by a rerun)
        out.mkdir(parents=True, exist_ok=True)
        cfg.judge.prefetch(rows, out / "judge_cache.jsonl")
    decontam_info = None
    if "decontam" in filters:
        ctx.decontam, decontam_info = build_decontam(cfg)
    if cfg.thinking not in ("keep", "drop"):
        raise InputError(f"must be keep or drop, got {cfg.thinking!r}", field="thinking")
    kept, dropped = [], []
    thinking = 0
    fail_counts: Counter = Counter()
    with progress_bar("curate", len(rows), quiet) as adv:
        for r in rows:
            verdicts: dict[str, Verdict] = {}
            for name in [f for f in filters if f in ROW_FILTERS]:
                verdicts[name] = FILTERS.get(name)(r, ctx)
            bad = [v.reason for v in verdicts.values() if not v.ok]
            if not bad:
                for name in [f for f in filters if f not in ROW_FILTERS]:
                    v = FILTERS.get(name)(r, ctx)
                    verdicts[name] = v
                    if not v.ok:
                        bad.append(v.reason)
            for name, v in verdicts.items():
                if not v.ok:
                    fail_counts[name] += 1
            checks = {n: {"ok": v.ok, "reason": v.reason, "extracted": v.extracted, **v.details}
                      for n, v in verdicts.items()}
            row = {**strip_meta(r), "checks": checks}
            if "steps" in verdicts:
                d = verdicts["steps"].details
                row["steps"] = {k: d[k] for k in ("valid", "first_error_line", "checked")}
            shown = visible(r)
            if shown != r["text"]:
                thinking += 1
                if cfg.thinking == "drop" and not bad:
                    row = {**row, "text": shown.strip(), "thinking_chars": len(r["text"]) - len(shown)}
            if bad:
                dropped.append({**row, "reason": bad[0], "reasons": bad})
            else:
                kept.append(row)
            adv(1)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "kept.jsonl", kept)
    write_jsonl(out / "dropped.jsonl", dropped)
    if cfg.parquet:
        write_parquet(out / "kept.parquet", kept)
    regs = sorted({r["register"] or "" for r in rows})
    counts = {"rows": len(rows), "kept": len(kept), "dropped": len(dropped),
              "drop_reasons": dict(Counter(d["reason"] for d in dropped)),
              "filter_failures": dict(fail_counts), "with_thinking": thinking,
              **({"decontam": {**decontam_info, "hits": fail_counts.get("decontam", 0)}} if decontam_info else {}),
              "per_register": {g: {"kept": sum(1 for r in kept if r["register"] == g),
                                   "dropped": sum(1 for r in dropped if r["register"] == g)} for g in regs}}
    write_manifest(out, "curate", conf, inputs, counts, started=t0)
    return {"skipped": False, **counts}


def build_decontam(cfg: CurateConfig) -> tuple[NgramIndex, dict]:
    """The n-gram index over the eval problems (--eval-problems) and the GSM8K test set where it is on disk."""
    evals = read_jsonl(cfg.eval_path, required=("question",)) if cfg.eval_path else []
    test, where = [], None
    try:
        test = load_gsm8k("test", cfg.decontam_gsm8k)
        where = str(cfg.decontam_gsm8k or "default GSM8K folder")
    except InputError:
        if cfg.decontam_gsm8k:
            raise
    if not evals and not test:
        raise InputError("the decontam filter needs evaluation text: --eval-problems, or the GSM8K test set on "
                         "disk", field="filters")
    try:
        idx = NgramIndex.build(reference_docs(evals, test), n=cfg.decontam_n)
    except ValueError as e:
        raise InputError(str(e), field="decontam-n") from None
    return idx, {"n": idx.n, "references": idx.references, "eval_problems": len(evals), "gsm8k_test": len(test),
                 "gsm8k_from": where, "template_ngrams_ignored": idx.template_ngrams}


def write_parquet(path: Path, rows: list[dict]) -> None:
    import polars as pl

    flat = [{k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in r.items()} for r in rows]
    tmp = path.with_suffix(".parquet.tmp")
    pl.DataFrame(flat, infer_schema_length=None).write_parquet(tmp)
    os.replace(tmp, path)
