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
        rest = [i for i in order if i not in set(chosen)]
        total = fill_and_swap(chosen, rest, counts[reg].__getitem__, budget, tolerance)
        out[reg] = [rows[i] for i in sorted(chosen)]
        report["registers"][reg] = {"total": total, "rows": len(chosen), "available": totals[reg],
                                    "available_rows": len(rows),
                                    "within": abs(total - budget) <= tolerance * budget}
    return out, report


def fill_and_swap(chosen: list, rest: list, cost, budget: float, tolerance: float = 0.01, *, max_swaps: int = 3,
                  swappable=None) -> int:
    """Bring the chosen items' total cost to the budget (within `tolerance`): add the items of `rest` that best
    fill the gap, then, where long items leave a gap no single one fits, swap a chosen item for one of `rest`
    that closes it (`swappable(chosen_item, rest_item)`: which pairs may be swapped). Changes both lists in place;
    returns the new total."""
    total = sum(cost(x) for x in chosen)
    slack = tolerance * budget
    while budget - total > slack and rest:
        gap = budget - total
        fit = [x for x in rest if cost(x) <= gap + slack]
        if not fit:
            break
        best = min(fit, key=lambda x: abs(gap - cost(x)))
        chosen.append(best)
        rest.remove(best)
        total += cost(best)
    for _ in range(max_swaps):
        gap = budget - total
        if abs(gap) <= slack:
            break
        pairs = ((c, u) for c in chosen for u in rest if swappable is None or swappable(c, u))
        c, u = min(pairs, key=lambda cu: abs(gap - (cost(cu[1]) - cost(cu[0]))), default=(None, None))
        if c is None or abs(gap - (cost(u) - cost(c))) >= abs(gap):
            break
        chosen[chosen.index(c)] = u
        rest[rest.index(u)] = c
        total += cost(u) - cost(c)
    return total
