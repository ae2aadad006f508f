"""Two grid runs of the same spec, cell by cell on the same problems: what changing the precision (or the engine,
or the machine) did to each accuracy, and whether it changed any conclusion the report draws.

Why a paired comparison: both runs answer the same questions, so the per-question differences carry the signal and
the interval is much narrower than two independent intervals. A conclusion is a comparison the report makes (a
register against the base model, one register against another); it is "changed" when its Holm-significant direction
differs between the runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tracestyle.errors import InputError
from tracestyle.reports import analysis
from tracestyle.reports.stats import holm, mcnemar, paired_diff_ci

ALPHA = 0.05


def _label(data: dict) -> str:
    precisions = sorted({sm.get("precision", "float32") for sm in data["summaries"].values()})
    engines = sorted({sm.get("backend", "?") for sm in data["summaries"].values()})
    return f"{'/'.join(precisions) or '?'} ({'/'.join(engines) or '?'})"


def _verdict(c: dict) -> str:
    if c["p_holm"] >= ALPHA:
        return "no detectable difference"
    return f"{c['b']} better" if c["diff"] > 0 else f"{c['a']} better"


def compare_runs(run_a: str | Path, run_b: str | Path) -> dict:
    """Per cell present in both runs: accuracy in each, the paired difference (b - a) with its 95% CI, McNemar's
    p (Holm over the cells), the share of questions whose correctness agrees; and each report comparison's verdict
    in both runs."""
    a, b = analysis.collect(Path(run_a)), analysis.collect(Path(run_b))
    if set(a["problems"]) != set(b["problems"]):
        raise InputError("the two runs evaluated different problems: a paired comparison needs the same ones",
                         str(run_b), field="problems/eval.jsonl")
    cells = []
    for key in sorted(set(a["evals"]) & set(b["evals"])):
        ra = {x["problem_id"]: bool(x["correct"]) for x in a["evals"][key]}
        rb = {x["problem_id"]: bool(x["correct"]) for x in b["evals"][key]}
        ids = sorted(set(ra) & set(rb))
        va, vb = [ra[i] for i in ids], [rb[i] for i in ids]
        diff, lo, hi = paired_diff_ci([float(x) for x in va], [float(x) for x in vb])
        m = mcnemar(va, vb)
        cells.append({"student": key[0], "register": key[1], "seed": key[2], "n": len(ids),
                      "acc_a": float(np.mean(va)), "acc_b": float(np.mean(vb)), "diff": diff, "ci_low": lo,
                      "ci_high": hi, "p": m["p_value"], "agree": sum(x == y for x, y in zip(va, vb)) / max(1, len(ids))})
    if not cells:
        raise InputError("no cell was evaluated in both runs", str(run_b))
    for c, adj in zip(cells, holm([c["p"] for c in cells])):
        c["p_holm"] = adj
    ca = {(c["student"], c["a"], c["b"]): c for c in analysis.comparisons(a)}
    cb = {(c["student"], c["a"], c["b"]): c for c in analysis.comparisons(b)}
    conclusions = [{"student": k[0], "pair": f"{k[1]} vs {k[2]}", "a": _verdict(ca[k]), "b": _verdict(cb[k]),
                    "changed": _verdict(ca[k]) != _verdict(cb[k])} for k in sorted(set(ca) & set(cb))]
    return {"a": str(run_a), "b": str(run_b), "label_a": _label(a), "label_b": _label(b), "cells": cells,
            "conclusions": conclusions, "changed": sum(c["changed"] for c in conclusions)}


def compare_markdown(res: dict) -> str:
    lines = [f"# {res['label_b']} against {res['label_a']}", "",
             f"Runs: A = `{res['a']}` ({res['label_a']}), B = `{res['b']}` ({res['label_b']}); same problems, "
             "paired per question.", "",
             "| student | register | seed | n | accuracy A | accuracy B | B - A [95% CI] | p (Holm) | same correctness |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in res["cells"]:
        lines.append(f"| {c['student']} | {c['register']} | {c['seed']} | {c['n']} | {c['acc_a']:.3f} | "
                     f"{c['acc_b']:.3f} | {100 * c['diff']:+.1f} [{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}] "
                     f"| {c['p_holm']:.3g} | {100 * c['agree']:.0f}% |")
    lines += ["", f"Conclusions of the report (Holm-significant direction per comparison): {res['changed']} of "
              f"{len(res['conclusions'])} differ between the runs.", "",
              "| student | comparison | A | B |", "|---|---|---|---|"]
    for c in res["conclusions"]:
        lines.append(f"| {c['student']} | {c['pair']} | {c['a']} | {c['b']}{' **(changed)**' if c['changed'] else ''} |")
    return "\n".join(lines) + "\n"
