"""Token-matched subsets: per register, traces whose total completion tokens meet a shared budget within 1%,
taking problems in one shared order so registers keep the same problem ids where they can."""

from __future__ import annotations

from random import Random


def match_budget(by_register: dict[str, list[dict]], counts: dict[str, list[int]], budget: int | None = None,
                 seed: int = 0, tolerance: float = 0.01) -> tuple[dict[str, list[dict]], dict]:
    """by_register: rows per register; counts: token count per row (same order). Returns subsets and a report."""
    totals = {r: sum(c) for r, c in counts.items()}
    budget = budget if budget is not None else min(totals.values())
    ids = sorted({row["problem_id"] for rows in by_register.values() for row in rows})
    Random(seed).shuffle(ids)
    rank = {pid: i for i, pid in enumerate(ids)}
    out, report = {}, {"budget": budget, "tolerance": tolerance, "registers": {}}
    for reg, rows in by_register.items():
        order = sorted(range(len(rows)), key=lambda i: (rank[rows[i]["problem_id"]], i))
        chosen, total = [], 0
        for i in order:
            if total + counts[reg][i] <= budget:
                chosen.append(i)
                total += counts[reg][i]
        # fill the gap with the rows that fit best
        rest = [i for i in order if i not in set(chosen)]
        while budget - total > tolerance * budget and rest:
            gap = budget - total
            fit = [i for i in rest if counts[reg][i] <= gap + tolerance * budget]
            if not fit:
                break
            best = min(fit, key=lambda i: abs(gap - counts[reg][i]))
            chosen.append(best)
            rest.remove(best)
            total += counts[reg][best]
        # long traces leave a gap no single row fits: swap one chosen row for a longer one that closes it
        for _ in range(3):
            gap = budget - total
            if abs(gap) <= tolerance * budget:
                break
            pairs = ((c, u) for c in chosen for u in rest)
            c, u = min(pairs, key=lambda cu: abs(gap - (counts[reg][cu[1]] - counts[reg][cu[0]])), default=(None, None))
            if c is None or abs(gap - (counts[reg][u] - counts[reg][c])) >= abs(gap):
                break
            chosen[chosen.index(c)] = u
            rest[rest.index(u)] = c
            total += counts[reg][u] - counts[reg][c]
        out[reg] = [rows[i] for i in sorted(chosen)]
        report["registers"][reg] = {"total": total, "rows": len(chosen), "available": totals[reg],
                                    "available_rows": len(rows),
                                    "within": abs(total - budget) <= tolerance * budget}
    return out, report
