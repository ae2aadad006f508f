"""An honest RSFT pool: train-split problems drawn to match the evaluation's difficulty distribution (hops,
steps), never an eval problem. Rejection sampling on easy problems alone teaches the student easy problems; the
report must be able to tell that apart from what RSFT does at the difficulty it is scored on."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from random import Random

from tracestyle.tasks import task_of


def _level(p: dict):
    return (p.get("difficulty") or {}).get(task_of(p).difficulty_key)


def _norm(q: str) -> str:
    return re.sub(r"\s+", " ", q.strip().lower())


def difficulty_matched(pool: list[dict], target: list[dict], n: int | None = None,
                       seed: int = 0) -> tuple[list[dict], dict]:
    """Up to n pool problems whose difficulty histogram follows target's (largest remainders); pool problems that
    are target problems (same id or question) are removed first. The report says what could not be matched."""
    seen_ids, seen_q = {str(t.get("id")) for t in target}, {_norm(t["question"]) for t in target}
    clean = [p for p in pool if str(p.get("id")) not in seen_ids and _norm(p["question"]) not in seen_q]
    want = Counter(_level(t) for t in target)
    by: dict = defaultdict(list)
    for p in clean:
        by[_level(p)].append(p)
    rng = Random(seed)
    for lv in by:
        rng.shuffle(by[lv])
    n = min(n or len(clean), len(clean))
    # the largest n whose per-level quotas the pool can fill
    total = sum(want.values()) or 1
    quota = {lv: 0 for lv in want}
    while sum(quota.values()) < n:
        lv = max(want, key=lambda v: (want[v] / total * (sum(quota.values()) + 1) - quota[v], str(v)))
        if quota[lv] >= len(by.get(lv, [])):
            break
        quota[lv] += 1
    chosen = [p for lv, k in quota.items() for p in by.get(lv, [])[:k]]
    report = {"pool": len(pool), "removed_as_eval": len(pool) - len(clean), "chosen": len(chosen),
              "target_levels": {str(k): v for k, v in sorted(want.items(), key=lambda kv: str(kv[0]))},
              "chosen_levels": {str(k): v for k, v in sorted(Counter(_level(p) for p in chosen).items(),
                                                             key=lambda kv: str(kv[0]))},
              "missing_levels": sorted(str(lv) for lv in want if not by.get(lv))}
    return chosen, report
