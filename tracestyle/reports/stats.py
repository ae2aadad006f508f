"""Statistics for comparisons: bootstrap CIs over problems (and seeds), McNemar, chi-square independence."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps


def bootstrap_ci(correct: list[list[bool]] | list[bool], n_boot: int = 2000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float, float]:
    """Mean accuracy and a percentile CI. `correct` is per problem, or per seed then per problem (resampling
    seeds and problems both, so seed variance widens the interval)."""
    arr = np.asarray(correct, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.size == 0:
        return 0.0, 0.0, 0.0
    rng = np.random.default_rng(seed)
    s, n = arr.shape
    si = rng.integers(0, s, size=(n_boot, s))
    pi = rng.integers(0, n, size=(n_boot, n))
    means = np.array([arr[si[b]][:, pi[b]].mean() for b in range(n_boot)])
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(arr.mean()), float(lo), float(hi)


def mcnemar(a: list[bool], b: list[bool]) -> dict:
    """Paired comparison on the same problems: exact binomial test on the discordant pairs."""
    if len(a) != len(b):
        raise ValueError("paired lists differ in length")
    b01 = sum(1 for x, y in zip(a, b) if not x and y)
    b10 = sum(1 for x, y in zip(a, b) if x and not y)
    n = b01 + b10
    p = 1.0 if n == 0 else float(sps.binomtest(b01, n, 0.5).pvalue)
    return {"a_only": b10, "b_only": b01, "p_value": p}


def chi2_2x2(valid: list[bool], correct: list[bool]) -> dict:
    table = [[sum(1 for v, c in zip(valid, correct) if v == vv and c == cc) for cc in (True, False)]
             for vv in (True, False)]
    arr = np.asarray(table)
    if (arr.sum(axis=0) == 0).any() or (arr.sum(axis=1) == 0).any():
        return {"table": table, "chi2": None, "p_value": None}
    chi2, p, _, _ = sps.chi2_contingency(arr)
    return {"table": table, "chi2": float(chi2), "p_value": float(p)}


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down; monotone), in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adj, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adj[i] = running
    return adj


def paired_diff_ci(a: list[bool], b: list[bool], n_boot: int = 2000, alpha: float = 0.05,
                   seed: int = 0) -> tuple[float, float, float]:
    """Accuracy of b minus accuracy of a on the same problems, with a paired bootstrap CI over problems."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0:
        return 0.0, 0.0, 0.0
    d = y - x
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(d.mean()), float(lo), float(hi)


def cohen_h(p1: float, p2: float) -> float:
    """Effect size for two proportions (0.2 small, 0.5 medium, 0.8 large)."""
    return float(2 * np.arcsin(np.sqrt(p2)) - 2 * np.arcsin(np.sqrt(p1)))


def mde_paired(n: int, discordant: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest accuracy difference a McNemar test on n paired problems detects with this power, given the
    share of discordant pairs (Connor's approximation, solved for the difference). A 'no difference' reading is
    only as strong as this number is small."""
    if n <= 0:
        return 1.0
    za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    lo, hi = 1e-6, 1.0
    for _ in range(60):   # n(δ) decreases in δ: bisect for n(δ) = n
        mid = (lo + hi) / 2
        pd = max(discordant, mid)   # a difference δ needs at least δ of the pairs to be discordant
        need = (za * np.sqrt(pd) + zb * np.sqrt(max(pd - mid * mid, 0.0))) ** 2 / (mid * mid)
        lo, hi = (mid, hi) if need > n else (lo, mid)
    return float(hi)
