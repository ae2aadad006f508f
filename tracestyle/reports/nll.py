"""Does a cheap forward pass predict what a student learns? Each student's NLL of each condition's traces before
training, beside the accuracy gain over its base model, with Spearman's rho across cells."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tracestyle.conditions import conditions_of
from tracestyle.layout import nll_dir


def nll_points(run: Path, data: dict, agg: dict) -> list[dict]:
    """One point per (student, condition) with an NLL and an evaluated cell: nll, accuracy, gain over base."""
    spec = data["spec"]
    out = []
    for s in spec["students"]:
        base = agg.get((s, "base"))
        for c in conditions_of(spec):
            p = nll_dir(run, s, c) / "nll.json"
            if not p.exists() or (s, c) not in agg:
                continue
            nll = json.loads(p.read_text()).get("nll")
            if nll is None:
                continue
            acc = float(np.mean(agg[(s, c)]))
            out.append({"student": s, "condition": c, "nll": nll, "accuracy": acc,
                        "gain": acc - float(np.mean(base)) if base else None})
    return out


def spearman(points: list[dict]) -> dict | None:
    """Spearman's rho of NLL against the gain over base across all cells (and per student, where it has 3+)."""
    from scipy.stats import spearmanr

    pts = [p for p in points if p["gain"] is not None]
    if len(pts) < 3:
        return None
    res = {"all": _rho(spearmanr, pts)}
    for s in sorted({p["student"] for p in pts}):
        mine = [p for p in pts if p["student"] == s]
        if len(mine) >= 3:
            res[s] = _rho(spearmanr, mine)
    return res


def _rho(spearmanr, pts: list[dict]) -> dict:
    r = spearmanr([p["nll"] for p in pts], [p["gain"] for p in pts])
    rho, pv = float(r.statistic), float(r.pvalue)
    return {"rho": None if np.isnan(rho) else round(rho, 3), "p": None if np.isnan(pv) else round(pv, 4),
            "n": len(pts)}


def nll_table(points: list[dict], rho: dict | None) -> dict | None:
    if not points:
        return None
    rows = [[p["student"], p["condition"], f"{p['nll']:.3f}", f"{p['accuracy']:.3f}",
             "-" if p["gain"] is None else f"{100 * p['gain']:+.1f}"] for p in points]
    note = "NLL: mean negative log-likelihood per completion token of a fixed sample of the condition's training " \
           "traces, under the untrained student. "
    if rho:
        note += "; ".join(f"Spearman's rho (NLL vs gain) {k}: {v['rho']} (p = {v['p']}, n = {v['n']} cells)"
                          for k, v in rho.items()) + ". A negative rho: the traces a student already finds likely " \
                                                     "are the ones it gains most from."
    else:
        note += "Too few cells for a rank correlation (3 needed)."
    return {"id": "nll", "title": "The student's view of each condition before training, beside what it learned",
            "cols": ["student", "condition", "NLL before training", "accuracy after", "gain over base (points)"],
            "rows": rows, "note": note}
