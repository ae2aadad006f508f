"""The report's plots as inline PNG (base64), so report.html is one self-contained file."""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from pathlib import Path

from tracestyle.conditions import conditions_of
from tracestyle.layout import cell_dir


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def accuracy_bars(results: list[dict]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(results)), 3.2))
    labels = [f"{r['student']}\n{r['register']} s{r['seed']}" for r in results]
    acc = [r["accuracy"] for r in results]
    err = [[r["accuracy"] - r["ci_low"] for r in results], [r["ci_high"] - r["accuracy"] for r in results]]
    ax.bar(range(len(acc)), acc, yerr=err, capsize=3,
           color=["#999" if r["register"] == "base" else "#4a7" for r in results])
    ax.set_xticks(range(len(acc)), labels, fontsize=6, rotation=60, ha="right")
    ax.set_ylabel("accuracy (95% CI)")
    return _png(fig)


def scale_by_style(results: list[dict], students: list[dict]) -> str:
    """Accuracy against student size, one line per register (base dashed); seeds pooled per cell."""
    plt = _plt()
    order = sorted(students, key=lambda s: s["params"] or 0)
    xs = list(range(len(order)))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    regs = sorted({r["register"] for r in results}, key=lambda r: (r != "base", r))
    for reg in regs:
        ys, lo, hi = [], [], []
        for s in order:
            cell = [r for r in results if r["student"] == s["name"] and r["register"] == reg]
            if not cell:
                ys.append(float("nan"))
                lo.append(0)
                hi.append(0)
                continue
            a = sum(r["accuracy"] for r in cell) / len(cell)
            ys.append(a)
            lo.append(a - min(r["ci_low"] for r in cell))
            hi.append(max(r["ci_high"] for r in cell) - a)
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=reg,
                    linestyle="--" if reg == "base" else "-", color="#777" if reg == "base" else None)
    ax.set_xticks(xs, [f"{s['name']}\n{s['size']} ({s['family']})" for s in order], fontsize=7)
    ax.set_xlabel("student (by size; the family differs too where named)")
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    return _png(fig)


def failure_heatmap(counts: dict[tuple, Counter], names: list[str]) -> str | None:
    """Change in each failure category's count against the same student's base model."""
    rows = [k for k in sorted(counts) if k[1] != "base"]
    if not rows or not names:
        return None
    plt = _plt()
    vals = [[counts[k][n] - counts.get((k[0], "base"), Counter())[n] for n in names] for k in rows]
    lim = max(1, max(abs(v) for row in vals for v in row))
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(names)), 0.4 * len(rows) + 1.5))
    im = ax.imshow(vals, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{s} / {r}" for s, r in rows], fontsize=7)
    for i, row in enumerate(vals):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:+d}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label="count minus base model's")
    return _png(fig)


def loss_curves(run: Path, spec: dict) -> str | None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    drawn = False
    for s in spec["students"]:
        for r in conditions_of(spec):
            p = cell_dir(run, s, r, spec["seeds"][0]) / "adapter" / "metrics.jsonl"
            if not p.exists():
                continue
            m = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
            line, = ax.plot([x["step"] for x in m], [x["loss"] for x in m], label=f"{s} {r} train")
            ev = [x for x in m if "eval_loss" in x]
            if ev:
                ax.plot([x["step"] for x in ev], [x["eval_loss"] for x in ev], "--o", color=line.get_color(),
                        label=f"{s} {r} eval")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("step")
    ax.set_ylabel("completion loss")
    ax.set_yscale("log")
    ax.legend(fontsize=6)
    return _png(fig)


def nll_scatter(points: list[dict]) -> str | None:
    """NLL before training against the accuracy gain over the base model, one marker per student."""
    pts = [p for p in points if p["gain"] is not None]
    if len(pts) < 2:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for s in sorted({p["student"] for p in pts}):
        mine = [p for p in pts if p["student"] == s]
        ax.scatter([p["nll"] for p in mine], [100 * p["gain"] for p in mine], label=s)
        for p in mine:
            ax.annotate(p["condition"], (p["nll"], 100 * p["gain"]), fontsize=6, xytext=(3, 2),
                        textcoords="offset points")
    ax.axhline(0, color="#999", linewidth=0.8)
    ax.set_xlabel("NLL per completion token before training")
    ax.set_ylabel("accuracy gain over base (points)")
    ax.legend(fontsize=7)
    return _png(fig)
