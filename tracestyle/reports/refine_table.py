"""The round-by-round table of a refine run: per student, each register version, what changed and why, accuracy
against the previous round and round 0 (paired, Holm within the student), the targeted failure category before
and after (and the category that rose most), the student's NLL of the traces before training, and tokens."""

from __future__ import annotations

import json
from pathlib import Path

from tracestyle.layout import refine_dir
from tracestyle.reports.stats import holm


def refine_rounds(run: Path) -> dict[str, list[dict]]:
    students = json.loads((run / "spec.json").read_text())["students"]
    out = {}
    for s in students:
        p = refine_dir(run, s) / "rounds.json"
        if p.exists():
            out[s] = json.loads(p.read_text())["rounds"]
    return out


def _diff(c: dict | None, p_holm: float | None) -> str:
    if not c:
        return "-"
    return f"{100 * c['diff']:+.1f} [{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}], p {p_holm:.2g}"


def _target_change(r: dict, prev: dict | None) -> str:
    if prev is None or not r["added"]:
        return "-"
    parts = []
    for a in r["added"]:
        before, after = prev["failures"].get(a["for"], 0), r["failures"].get(a["for"], 0)
        parts.append(f"{a['for']} {before:g} → {after:g}")
    return "; ".join(parts)


def _rose(r: dict, prev: dict | None) -> str:
    """The other category that rose most: an intervention that moves failures elsewhere shows here."""
    if prev is None:
        return "-"
    targeted = {a["for"] for a in r["added"]}
    rises = [(r["failures"].get(c, 0) - prev["failures"].get(c, 0), c)
             for c in set(r["failures"]) | set(prev["failures"]) if c not in targeted]
    up = max(rises, default=(0, ""))
    return f"{up[1]} +{up[0]:g}" if up[0] > 0 else "none"


def refine_rows(run: Path) -> list[list]:
    rows = []
    for student, rounds in refine_rounds(run).items():
        later = [r for r in rounds if r["round"] > 0]
        # one family per student: every round against its previous and against round 0
        ps = holm([r["vs_previous"]["p"] for r in later] + [r["vs_round0"]["p"] for r in later])
        adj = {id(r): (ps[i], ps[len(later) + i]) for i, r in enumerate(later)}
        by_name = {}
        for r in rounds:
            prev = by_name.get(r["parent"]) if r["parent"] else None
            p_prev, p_first = adj.get(id(r), (None, None))
            change = "start" if r["round"] == 0 else "; ".join(f"+{a['id']} (for {a['for']}): {a['change']}"
                                                               for a in r["added"])
            nll = "-" if r["nll"] is None else f"{r['nll']:.3f}" + (
                "" if r["nll_change"] is None else f" ({r['nll_change']:+.3f})")
            status = r["status"] + (" · best" if r.get("best") else "") + (f" · stop: {r['stop']}" if r.get("stop")
                                                                           else "")
            if r.get("refused"):
                status += " · refused " + ", ".join(f"{x['id']} ({x['reason']})" for x in r["refused"])
            rows.append([student, r["round"], r["register"], change,
                         f"{r['accuracy']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]",
                         _diff(r.get("vs_previous"), p_prev), _diff(r.get("vs_round0"), p_first),
                         _target_change(r, prev), _rose(r, prev), nll, f"{r['tokens']} ({r['rows']} traces)", status])
            by_name[r["register"]] = r
    return rows


def refine_summary(run: Path) -> list[str]:
    """One sentence per student: the best version and how it compares with round 0."""
    out = []
    for student, rounds in refine_rounds(run).items():
        best = next((r for r in rounds if r.get("best")), rounds[0])
        stop = next((r["stop"] for r in rounds if r.get("stop")), None)
        if best["round"] == 0:
            text = f"{student}: no round beat the start register {best['register']} ({best['accuracy']:.3f})"
        else:
            c = best["vs_round0"]
            text = (f"{student}: best is round {best['round']} ({best['register']}, "
                    f"{', '.join(a['id'] for a in _chain(rounds, best))}): {c['acc_a']:.3f} → {c['acc_b']:.3f}, "
                    f"{100 * c['diff']:+.1f} points [{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}] against "
                    f"round 0 (uncorrected p {c['p']:.2g})")
        out.append(text + (f"; stopped: {stop}" if stop else "") + ".")
    return out


def _chain(rounds: list[dict], r: dict) -> list[dict]:
    by = {x["register"]: x for x in rounds}
    added = []
    while r and r["round"] > 0:
        added = r["added"] + added
        r = by.get(r["parent"])
    return added
