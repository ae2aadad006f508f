"""The RL part of a grid report: one row per GRPO cell (reward at the start and end, the share of groups whose
completions all got one reward, and so taught nothing), reward curves, one row per RSFT stage (what it sampled and
kept), and the transfer table (every cell on evaluation sets of tasks it never trained on, each against the base
model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tracestyle.conditions import conditions_of
from tracestyle.jsonl import read_jsonl
from tracestyle.layout import cell_dir, transfer_dir
from tracestyle.reports.stats import bootstrap_ci, holm, mcnemar, paired_diff_ci


def rl_cells(spec: dict) -> list[tuple[str, str, int]]:
    return [(s, c, seed) for s in spec["students"] for c in conditions_of(spec) if "@" in c for seed in spec["seeds"]]


def _metrics(run: Path, s: str, c: str, seed: int) -> list[dict]:
    p = cell_dir(run, s, c, seed) / "rl" / "metrics.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.exists() else []


def _mean(rows: list[dict], key: str) -> float | None:
    v = [r[key] for r in rows if r.get(key) is not None]
    return float(np.mean(v)) if v else None


def _f(v, fmt=".3f") -> str:
    return "-" if v is None else format(v, fmt)


def rl_rows(run: Path, spec: dict) -> list[list]:
    """Per GRPO cell: reward mix, steps, mean reward over the first and last quarter of steps, zero-spread share,
    completion length, seconds."""
    out = []
    for s, c, seed in rl_cells(spec):
        m = _metrics(run, s, c, seed)
        if not m:
            continue
        q = max(1, len(m) // 4)
        man = cell_dir(run, s, c, seed) / "rl" / "manifest.json"
        counts = json.loads(man.read_text()).get("counts", {}) if man.exists() else {}
        reward = " + ".join(f"{w:g}×{n}" if w != 1 else n for n, w in counts.get("rewards", [])) or "?"
        out.append([s, c, seed, reward, len(m), _f(_mean(m[:q], "reward")), _f(_mean(m[-q:], "reward")),
                    _f(_mean(m, "zero_spread_groups"), ".2f"), _f(_mean(m, "completion_tokens"), ".0f"),
                    _f(counts.get("seconds"), ".0f")])
    return out


def rsft_rows(run: Path, spec: dict) -> list[list]:
    """Per RSFT stage (a register's cell under recipe sft+rsft, or an `@rsft`-style variant): where it started,
    its pool, how many samples it drew, how many problems it solved (the traces it then trained on), seconds."""
    out = []
    for s in spec["students"]:
        for c in conditions_of(spec):
            for seed in spec["seeds"]:
                man = cell_dir(run, s, c, seed) / "rsft" / "manifest.json"
                if not man.exists():
                    continue
                m = json.loads(man.read_text())
                cfg, counts = m.get("config", {}), m.get("counts", {})
                hist = counts.get("history") or [{}]
                pool = sum((counts.get("pool_splits") or {}).values())
                start = "SFT adapter" if cfg.get("init_adapter") else "base model"
                out.append([s, c, seed, start, pool, cfg.get("k", "?"), sum(h.get("samples", 0) for h in hist),
                            hist[-1].get("problems_solved", "-"), _f(hist[-1].get("sample_accuracy"), ".2f"),
                            _f(m.get("seconds"), ".0f")])
    return out


def _bins(rows: list[dict], key: str, bins: int) -> str:
    """Means of `key` over consecutive slices of the steps, as 'a → b → c' (a curve in a table cell)."""
    parts = [p for p in np.array_split(np.arange(len(rows)), min(bins, len(rows))) if len(p)]
    return " → ".join(_f(_mean([rows[i] for i in p], key), ".2f") for p in parts)


def reward_curve_rows(run: Path, spec: dict, bins: int = 5) -> list[list]:
    """The reward curves in text, for report.md: per GRPO cell and reward function, its mean in each fifth of the
    steps, and the zero-spread share the same way."""
    out = []
    for s, c, seed in rl_cells(spec):
        m = _metrics(run, s, c, seed)
        if not m:
            continue
        names = sorted({k.split("/")[1] for r in m for k in r if k.startswith("rewards/") and k.endswith("/mean")})
        out.append([s, c, seed, "weighted sum", _bins(m, "reward", bins), _bins(m, "zero_spread_groups", bins)])
        if len(names) > 1:
            out += [[s, c, seed, n, _bins(m, f"rewards/{n}/mean", bins), ""] for n in names]
    return out


def reward_curves(run: Path, spec: dict) -> str | None:
    """Mean reward per step (a 5-step moving average) and the zero-spread share, per GRPO cell (first seed)."""
    from tracestyle.reports.plots import _plt, _png

    cells = [(s, c) for s, c, seed in rl_cells(spec) if seed == spec["seeds"][0]]
    series = [(s, c, _metrics(run, s, c, spec["seeds"][0])) for s, c in cells]
    series = [x for x in series if x[2]]
    if not series:
        return None
    plt = _plt()
    fig, (ax, az) = plt.subplots(1, 2, figsize=(9, 3.2))
    for s, c, m in series:
        steps = [r["step"] for r in m]
        rew = np.array([r.get("reward", np.nan) for r in m], dtype=float)
        k = min(5, len(rew))
        smooth = np.convolve(rew, np.ones(k) / k, mode="valid")
        line, = ax.plot(steps[k - 1:], smooth, label=f"{s} {c}")
        ax.plot(steps, rew, alpha=0.25, color=line.get_color())
        az.plot(steps, [r.get("zero_spread_groups", np.nan) for r in m], color=line.get_color())
    ax.set_xlabel("step")
    ax.set_ylabel("mean reward (5-step average)")
    az.set_xlabel("step")
    az.set_ylabel("groups with one reward (no gradient)")
    az.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=6)
    return _png(fig)


def transfer_rows(run: Path, spec: dict) -> list[list]:
    """Per transfer set and student: each condition's accuracy [CI] and its paired difference from the base model
    on the same problems (McNemar, Holm within a set and student)."""
    out = []
    for t in spec.get("transfer") or []:
        ppath = run / "problems" / f"transfer-{t['name']}.jsonl"
        if not ppath.exists():
            continue
        ids = sorted(p["id"] for p in read_jsonl(ppath, allow_empty=True))
        for s in spec["students"]:
            cells = {}
            for c in ["base"] + conditions_of(spec):
                seeds = [0] if c == "base" else spec["seeds"]
                per_seed = []
                for seed in seeds:
                    d = transfer_dir(run, s, c, seed, t["name"])
                    if (d / "manifest.json").exists():
                        m = {x["problem_id"]: bool(x["correct"]) for x in read_jsonl(d / "eval.jsonl", allow_empty=True)}
                        if all(i in m for i in ids):
                            per_seed.append([m[i] for i in ids])
                if per_seed:
                    cells[c] = per_seed
            if "base" not in cells:
                continue
            base = [float(x) for x in np.mean(cells["base"], axis=0)]
            rows, ps = [], []
            for c, per in cells.items():
                acc, lo, hi = bootstrap_ci(per)
                if c == "base":
                    rows.append([t["name"], s, c, f"{acc:.3f} [{lo:.3f}, {hi:.3f}]", "-", None])
                    continue
                mine = [float(x) for x in np.mean(per, axis=0)]
                diff, dlo, dhi = paired_diff_ci(base, mine)
                p = mcnemar([x >= 0.5 for x in base], [x >= 0.5 for x in mine])["p_value"]
                ps.append(p)
                rows.append([t["name"], s, c, f"{acc:.3f} [{lo:.3f}, {hi:.3f}]",
                             f"{100 * diff:+.1f} [{100 * dlo:+.1f}, {100 * dhi:+.1f}]", p])
            adj = iter(holm(ps))
            for r in rows:
                r[5] = "-" if r[5] is None else f"{next(adj):.3g}"
            out += rows
    return out


# (id, title, columns, rows function, note): the report's tables for cells trained after SFT, and transfer
_TABLES = (
    ("rl", "GRPO cells: reward during training",
     ["student", "condition", "seed", "reward", "steps", "reward, first quarter", "reward, last quarter",
      "zero-spread groups", "completion tokens", "seconds"], rl_rows,
     "a zero-spread group gave every completion of one problem the same reward: no advantage, no gradient. "
     "A small student that shares one reward across most groups learns little whatever the reward says: "
     "try an SFT warm start (from: sft), partial-credit rewards (kg_path, steps) or rl_solvable_k."),
    ("rl_curves", "GRPO reward curves: mean per fifth of the steps",
     ["student", "condition", "seed", "reward", "mean reward, first → last fifth", "zero-spread groups"],
     reward_curve_rows,
     "the weighted sum is what GRPO maximised; each reward function's own mean follows where there are "
     "several. The plot in report.html shows every step."),
    ("rsft", "RSFT cells: what rejection sampling drew and kept",
     ["student", "condition", "seed", "started from", "pool (problems)", "samples per problem", "samples",
      "problems solved (trained on)", "sample accuracy", "seconds"], rsft_rows,
     "each solved problem gives one trace (its best correct sample) to fine-tune on; a student that solves "
     "few pool problems trains on few traces, whatever the recipe."),
    ("transfer", "Transfer: accuracy on tasks the students never trained on, against the base model",
     ["set", "student", "condition", "accuracy [95% CI]", "difference from base [95% CI]", "p (Holm)"],
     transfer_rows,
     "difference in points on the same problems (paired); p from McNemar, Holm-corrected per set and student."),
)


def after_sft_tables(run: Path, spec: dict) -> list[dict]:
    """The GRPO, reward-curve, RSFT and transfer tables that have rows in this run."""
    out = []
    for tid, title, cols, rows_fn, note in _TABLES:
        rows = rows_fn(run, spec)
        if rows:
            out.append({"id": tid, "title": title, "cols": cols, "rows": rows, "note": note})
    return out
