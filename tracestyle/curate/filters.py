"""Filters: named pure verdicts over trace rows, plus set-level dedup and train/eval overlap."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tracestyle.curate.compliance import check_compliance
from tracestyle.curate.extract import verify_answer
from tracestyle.curate.kg_graph import KnowledgeGraph
from tracestyle.curate.kg_path import verify_kg_path
from tracestyle.curate.verdict import Verdict
from tracestyle.prompts import Register
from tracestyle.registry import Registry


@dataclass
class FilterContext:
    registers: dict[str, Register] = field(default_factory=dict)
    kgs: dict[str, KnowledgeGraph] = field(default_factory=dict)
    min_chars: int = 1
    max_chars: int = 20000
    eval_questions: set[str] = field(default_factory=set)
    seen: set = field(default_factory=set)
    judge: Callable[[dict], Verdict] | None = None


RowFilter = Callable[[dict, FilterContext], Verdict]
FILTERS: Registry[RowFilter] = Registry("filter")


def norm_text(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip().lower())


def f_correct(row: dict, ctx: FilterContext) -> Verdict:
    return verify_answer(row["text"], row["problem"])


def f_kg_path(row: dict, ctx: FilterContext) -> Verdict:
    p = row["problem"]
    if p.get("task") != "kg":
        return Verdict(True, "ok", details={"skipped": "not a KG row"})
    kg = ctx.kgs.get(p.get("domain", ""))
    if kg is None:
        return Verdict(False, "kg_path:unknown_kg")
    return verify_kg_path(row["text"], p, kg)


def f_compliance(row: dict, ctx: FilterContext) -> Verdict:
    reg = ctx.registers.get(row.get("register", ""))
    if reg is None:
        return Verdict(False, "noncompliant:unknown_register")
    return check_compliance(row["text"], reg.compliance)


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


def f_judge(row: dict, ctx: FilterContext) -> Verdict:
    if ctx.judge is None:
        return Verdict(False, "judge:not_configured")
    return ctx.judge(row)


for _name, _fn in [("length", f_length), ("correct", f_correct), ("kg_path", f_kg_path),
                   ("compliance", f_compliance), ("judge", f_judge), ("dedup", f_dedup), ("overlap", f_overlap)]:
    FILTERS.add(_name, _fn)
