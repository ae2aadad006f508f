"""Filters: named pure verdicts over trace rows, plus set-level dedup and train/eval overlap."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tracestyle.answers.arithmetic import steps_verdict
from tracestyle.answers.extract import after_reasoning
from tracestyle.curate.compliance import check_compliance
from tracestyle.curate.decontam import NgramIndex
from tracestyle.prompts import Register
from tracestyle.registry import Registry
from tracestyle.tasks import task_of
from tracestyle.verdict import Verdict


@dataclass
class FilterContext:
    registers: dict[str, Register] = field(default_factory=dict)
    min_chars: int = 1
    max_chars: int = 20000
    eval_questions: set[str] = field(default_factory=set)
    seen: set = field(default_factory=set)
    judge: Callable[[dict], Verdict] | None = None
    decontam: NgramIndex | None = None


RowFilter = Callable[[dict, FilterContext], Verdict]
FILTERS: Registry[RowFilter] = Registry("filter")


def norm_text(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().lower())


def _truncated(row: dict) -> bool | None:
    # an OpenAI-compatible teacher says when it ran into max_tokens; otherwise the text is read for signs of it
    return True if row.get("finish_reason") == "length" else None


def visible(row: dict) -> str:
    """The trace a register shapes: a reasoning teacher's <think>…</think> block is its private draft (prose,
    abandoned paths, wrong first tries), so compliance, path and step checks read what follows it."""
    return after_reasoning(row["text"])


def f_correct(row: dict, ctx: FilterContext) -> Verdict:
    return task_of(row["problem"]).check_answer(row["problem"], row["text"], truncated=_truncated(row))


def f_kg_path(row: dict, ctx: FilterContext) -> Verdict:
    checks = task_of(row["problem"]).check_trace(row["problem"], visible(row))
    if "path" not in checks:
        return Verdict(True, "ok", details={"skipped": "no path to check (not a KG row)"})
    return checks["path"]


def f_steps(row: dict, ctx: FilterContext) -> Verdict:
    """Recompute every stated arithmetic relation; a trace whose steps are wrong teaches wrong steps even when
    its final answer is right. A row with nothing checkable passes (checked: 0)."""
    return steps_verdict(visible(row))


def f_compliance(row: dict, ctx: FilterContext) -> Verdict:
    reg = ctx.registers.get(row.get("register", ""))
    if reg is None:
        return Verdict(False, "noncompliant:unknown_register")
    return check_compliance(visible(row), reg.compliance)


def f_length(row: dict, ctx: FilterContext) -> Verdict:
    n = len(row["text"])
    if n < ctx.min_chars:
        return Verdict(False, "length:too_short", details={"chars": n})
    if n > ctx.max_chars:
        return Verdict(False, "length:too_long", details={"chars": n})
    return Verdict(True, "ok")


def f_dedup(row: dict, ctx: FilterContext) -> Verdict:
    key = (row.get("register"), norm_text(row["question"]), norm_text(row["text"]))
    if key in ctx.seen:
        return Verdict(False, "duplicate")
    ctx.seen.add(key)
    return Verdict(True, "ok")


def f_overlap(row: dict, ctx: FilterContext) -> Verdict:
    if norm_text(row["question"]) in ctx.eval_questions:
        return Verdict(False, "overlap:eval_question")
    return Verdict(True, "ok")


def f_decontam(row: dict, ctx: FilterContext) -> Verdict:
    """Word n-gram overlap of the question or the trace with evaluation text; the n-gram is in the reason."""
    if ctx.decontam is None:
        return Verdict(False, "decontam:not_configured")
    for part in ("question", "text"):
        hit = ctx.decontam.first_hit(row[part])
        if hit:
            return Verdict(False, f"decontam:{hit[0]}", details={"in": part, "source": hit[1], "n": ctx.decontam.n})
    return Verdict(True, "ok")


def f_judge(row: dict, ctx: FilterContext) -> Verdict:
    if ctx.judge is None:
        return Verdict(False, "judge:not_configured")
    return ctx.judge(row)


for _name, _fn in [("length", f_length), ("correct", f_correct), ("kg_path", f_kg_path), ("steps", f_steps),
                   ("compliance", f_compliance), ("judge", f_judge), ("dedup", f_dedup), ("overlap", f_overlap),
                   ("decontam", f_decontam)]:
    FILTERS.add(_name, _fn)
