"""Rich terminal tables for the CLI's summaries."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

console = Console()


def print_curate_summary(res: dict) -> None:
    t = Table(title=f"curate: kept {res['kept']} of {res['rows']}")
    t.add_column("register")
    t.add_column("kept", justify="right")
    t.add_column("dropped", justify="right")
    for reg, c in res["per_register"].items():
        t.add_row(reg or "-", str(c["kept"]), str(c["dropped"]))
    console.print(t)
    if res["drop_reasons"]:
        r = Table(title="drop reasons")
        r.add_column("reason")
        r.add_column("rows", justify="right")
        for k, v in sorted(res["drop_reasons"].items(), key=lambda x: -x[1]):
            r.add_row(k, str(v))
        console.print(r)


def print_stats(st: dict) -> None:
    t = Table(title=f"{st['path']} (tokens: {st['tokenizer']})")
    for c in ("register", "kept", "dropped", "problems", "tokens", "tokens/trace", "top drop reasons"):
        t.add_column(c, justify="left" if c in ("register", "top drop reasons") else "right")
    usage = any("teacher_usage" in s for s in st["registers"].values())
    if usage:
        for c in ("teacher prompt tok", "teacher completion tok", "est. cost $"):
            t.add_column(c, justify="right")
    for reg, s in st["registers"].items():
        reasons = ", ".join(f"{k} {v}" for k, v in list(s["drop_reasons"].items())[:3])
        cells = [reg, str(s["kept"]), str(s["dropped"]), str(s["problems"]), str(s["tokens"]),
                 str(s["tokens_per_trace"]), reasons]
        if usage:
            u = s.get("teacher_usage") or {}
            cells += [str(u.get("prompt_tokens", "-")), str(u.get("completion_tokens", "-")),
                      f"{u['cost_usd']:.4f}" if "cost_usd" in u else "-"]
        t.add_row(*cells)
    console.print(t)


def print_registers(registers: dict) -> None:
    t = Table(title="registers")
    for c in ("name", "version", "description", "templates"):
        t.add_column(c)
    for name, reg in registers.items():
        t.add_row(name, reg.version, reg.description, ", ".join(p.name for p in reg.template_files()))
    console.print(t)


def print_table(title: str, columns: list[str], rows: list[list]) -> None:
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(x) for x in r])
    console.print(t)
