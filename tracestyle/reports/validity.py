"""Trace validity against answer correctness, per cell: a right answer reached by wrong steps (or an invalid KG
path) and a wrong answer after valid steps are the two cases answer-only scoring cannot see."""

from __future__ import annotations

from tracestyle.reports.stats import chi2_2x2

# what each trace verifier's "valid" means in the table titles
VERIFIERS = {"path": ("KG path", "path"), "steps": ("arithmetic steps", "steps")}


def _checked(row: dict, key: str) -> bool:
    # a trace without any arithmetic statement is not evidence either way; a KG answer always has a path verdict
    return key != "steps" or bool((row.get("steps") or {}).get("checked"))


def validity_rows(evals: dict, key: str) -> list[list]:
    """[student, register, seed, valid&correct, valid&wrong, invalid&correct, invalid&wrong, unchecked, p]."""
    out = []
    for (s, r, seed), ev in sorted(evals.items()):
        rows = [x for x in ev if f"{key}_valid" in x]
        if not rows:
            continue
        seen = [x for x in rows if _checked(x, key)]
        t = chi2_2x2([bool(x[f"{key}_valid"]) for x in seen], [bool(x["correct"]) for x in seen])
        (a, b), (c, d) = t["table"]
        out.append([s, r, seed, a, b, c, d, len(rows) - len(seen),
                    "-" if t["p_value"] is None else f"{t['p_value']:.3g}"])
    return out


def validity_tables(evals: dict) -> list[dict]:
    tables = []
    for key, (title, noun) in VERIFIERS.items():
        rows = validity_rows(evals, key)
        if not rows:
            continue
        tables.append({
            "id": f"validity-{key}", "title": f"Trace validity ({title}) x answer correctness (chi-square test of "
                                              "independence over the checked rows)",
            "cols": ["student", "register", "seed", f"valid {noun} & right answer", f"valid {noun} & wrong answer",
                     f"wrong {noun} & right answer", f"wrong {noun} & wrong answer", "nothing to check", "p"],
            "rows": rows,
            "note": f"'wrong {noun} & right answer' is a right answer reached by faulty reasoning; 'valid {noun} & "
                    "wrong answer' is faultless reasoning that still ends wrong (for example a dropped step)."})
    return tables
