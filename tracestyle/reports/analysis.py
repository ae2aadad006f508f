"""What a grid run's evaluations say: accuracy per cell, paired comparisons with effect sizes, Holm-corrected
p-values and the smallest detectable difference, failure categories with examples, seed spread, token budgets."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from tracestyle.conditions import conditions_of, parents
from tracestyle.distill.models import load_preset
from tracestyle.errors import InputError
from tracestyle.jsonl import read_jsonl
from tracestyle.layout import eval_dir
from tracestyle.reports.stats import bootstrap_ci, cohen_h, holm, mcnemar, mde_paired, paired_diff_ci
from tracestyle.reports.taxonomy import categorize

ALPHA = 0.05


def _eval_rows(path: Path) -> list[dict] | None:
    p = path / "eval.jsonl"
    return read_jsonl(p, allow_empty=True) if p.exists() and (path / "manifest.json").exists() else None


def trained_threads(cell: Path) -> int | None:
    """The thread count the cell's weights were trained at (its train, rsft or rl manifest), if it says."""
    for m in sorted(cell.glob("*/manifest.json")):
        man = json.loads(m.read_text())
        if man.get("stage") in ("train", "rsft", "rl"):
            return (man.get("counts") or {}).get("threads")
    return None


def collect(run: Path) -> dict:
    spec = json.loads((run / "spec.json").read_text())
    problems = {p["id"]: p for p in read_jsonl(run / "problems" / "eval.jsonl")}
    evals: dict[tuple, list[dict]] = {}
    summaries: dict[tuple, dict] = {}
    for s in spec["students"]:
        for r, seeds in [("base", [0])] + [(c, spec["seeds"]) for c in conditions_of(spec)]:
            for seed in seeds:
                d = eval_dir(run, s, r, seed)
                rows = _eval_rows(d)
                if rows is not None:
                    evals[(s, r, seed)] = rows
                    summaries[(s, r, seed)] = json.loads((d / "summary.json").read_text()) \
                        if (d / "summary.json").exists() else {}
                    if r != "base":
                        summaries[(s, r, seed)]["train_threads"] = trained_threads(d.parent)
    return {"spec": spec, "problems": problems, "evals": evals, "summaries": summaries}


def student_info(name: str) -> dict:
    try:
        p = load_preset(name)
        return {"name": name, "size": p.size, "params": p.params, "family": p.family}
    except InputError:
        return {"name": name, "size": "?", "params": None, "family": "?"}


def results_rows(data: dict) -> list[dict]:
    out = []
    for (s, r, seed), rows in sorted(data["evals"].items()):
        acc, lo, hi = bootstrap_ci([bool(x["correct"]) for x in rows], seed=seed)
        sm = data.get("summaries", {}).get((s, r, seed), {})
        # what computed the cell: a comparison across precisions or engines is visible in the file itself
        row = {"student": s, "register": r, "seed": seed, "accuracy": round(acc, 4), "ci_low": round(lo, 4),
               "ci_high": round(hi, 4), "n": len(rows), "precision": sm.get("precision", "float32"),
               "engine": sm.get("backend", "?"), "train_threads": sm.get("train_threads"),
               "eval_threads": sm.get("threads")}
        if any("path_valid" in x for x in rows):
            row["path_valid_rate"] = round(sum(bool(x.get("path_valid")) for x in rows) / max(1, len(rows)), 4)
        checked = [x for x in rows if (x.get("steps") or {}).get("checked")]
        if checked:
            row["steps_valid_rate"] = round(sum(bool(x["steps_valid"]) for x in checked) / len(checked), 4)
            row["right_answer_wrong_steps"] = sum(1 for x in checked if x["correct"] and not x["steps_valid"])
            row["wrong_answer_valid_steps"] = sum(1 for x in checked if not x["correct"] and x["steps_valid"])
        out.append(row)
    return out


def by_cell(data: dict) -> dict:
    """(student, register) -> per-seed lists of per-problem correctness, in one fixed problem order."""
    ids = sorted(data["problems"])
    agg: dict = defaultdict(list)
    for (s, r, _seed), rows in sorted(data["evals"].items()):
        m = {x["problem_id"]: bool(x["correct"]) for x in rows}
        if all(i in m for i in ids):
            agg[(s, r)].append([m[i] for i in ids])
    return agg


def _majority(seeds: list[list[bool]]) -> list[bool]:
    """Per problem, correct in at least half the seeds: one paired vector per cell for McNemar."""
    arr = np.asarray(seeds, dtype=float)
    return list(arr.mean(axis=0) >= 0.5)


def paired(a: list[list[bool]], b: list[list[bool]]) -> dict:
    """Two cells on the same problems (per seed, per problem): accuracies, b - a with its paired CI, Cohen's h,
    McNemar on the per-problem majority over seeds."""
    m = mcnemar(_majority(a), _majority(b))
    n = len(a[0]) if a else 0
    diff, lo, hi = paired_diff_ci([float(x) for x in np.mean(a, axis=0)], [float(x) for x in np.mean(b, axis=0)])
    pa, pb = float(np.mean(a)), float(np.mean(b))
    return {"acc_a": pa, "acc_b": pb, "diff": diff, "ci_low": lo, "ci_high": hi, "cohen_h": cohen_h(pa, pb),
            "a_only": m["a_only"], "b_only": m["b_only"], "p": m["p_value"], "n": n,
            "discordant": (m["a_only"] + m["b_only"]) / max(1, n)}


def comparisons(data: dict) -> list[dict]:
    """Per student: every condition against the base model, every pair of clean registers, each corrupted or
    mixed condition against the clean register(s) it is built from, and the variants trained after one start
    (GRPO, RSFT) against it and against each other, on the same problems. p-values are
    Holm-corrected within a student (the family of comparisons a reader scans at once)."""
    agg = by_cell(data)
    spec = data["spec"]
    regs, conds = spec["registers"], conditions_of(spec)
    derived = [(p, c) for c in conds if c not in regs for p in parents(c, spec)]
    out = []
    for s in spec["students"]:
        pairs = [("base", r) for r in conds] + [(a, b) for i, a in enumerate(regs) for b in regs[i + 1:]] + derived
        # RSFT and GRPO variants from one start against each other: which recipe to run after SFT
        after = [c for c in conds if "@" in c]
        pairs += [(a, b) for i, a in enumerate(after) for b in after[i + 1:] if parents(a, spec) == parents(b, spec)]
        pairs = list(dict.fromkeys(pairs))      # "base@grpo" derives from base: one comparison, not two
        rows = []
        for a, b in pairs:
            if (s, a) not in agg or (s, b) not in agg:
                continue
            rows.append({"student": s, "a": a, "b": b, **paired(agg[(s, a)], agg[(s, b)])})
        for r, adj in zip(rows, holm([r["p"] for r in rows])):
            r["p_holm"] = adj
            # the strictest level Holm applies (its first step): the honest yardstick for "no difference"
            r["mde"] = mde_paired(r["n"], r["discordant"], ALPHA / max(1, len(rows)))
        out += rows
    return out


def _words(c: dict, flip: bool = False) -> str:
    """The difference (second minus first; `flip`: first minus second, so a winner's lead reads positive)."""
    sign = -1 if flip else 1
    lo, hi = sorted((100 * sign * c["ci_low"], 100 * sign * c["ci_high"]))
    return f"{100 * sign * c['diff']:+.1f} points [{lo:+.1f}, {hi:+.1f}], h = {sign * c['cohen_h']:+.2f}, " \
           f"Holm p = {c['p_holm']:.2g}"


def headlines(data: dict, comps: list[dict]) -> list[dict]:
    """A plain-words headline per student size."""
    out = []
    for s in data["spec"]["students"]:
        mine = [c for c in comps if c["student"] == s]
        if not mine:
            continue
        info = student_info(s)
        lines = []
        vs_base = [c for c in mine if c["a"] == "base"]
        beat = [c for c in vs_base if c["p_holm"] < ALPHA and c["diff"] > 0]
        hurt = [c for c in vs_base if c["p_holm"] < ALPHA and c["diff"] < 0]
        same = [c for c in vs_base if c["p_holm"] >= ALPHA]
        for c in sorted(beat, key=lambda c: -c["diff"]):
            lines.append(f"{c['b']} beats the base model: {_words(c)}.")
        for c in hurt:
            lines.append(f"{c['b']} is worse than the base model: {_words(c)}.")
        for c in same:
            lines.append(f"{c['b']} vs the base model: no detectable difference ({c['b']} − base: {_words(c)}); "
                         f"with n = {c['n']} this test detects only differences of about {100 * c['mde']:.0f} "
                         "points or more.")
        pairs = [c for c in mine if c["a"] != "base"]
        sig = [c for c in pairs if c["p_holm"] < ALPHA]
        for c in sig:
            win, lose = (c["b"], c["a"]) if c["diff"] > 0 else (c["a"], c["b"])
            lines.append(f"{win} beats {lose}: {_words(c, flip=win == c['a'])}.")
        for c in (c for c in pairs if c["p_holm"] >= ALPHA):
            lines.append(f"{c['a']} vs {c['b']}: no detectable difference ({c['b']} − {c['a']}: {_words(c)}); "
                         f"differences under about {100 * c['mde']:.0f} points could not have been detected at "
                         f"n = {c['n']}.")
        out.append({"student": s, "title": f"{s} ({info['size']}, {info['family']})", "lines": lines})
    return out


def seed_spread(data: dict) -> list[list]:
    """Accuracy across seeds beside the interval over questions, where a grid has several seeds."""
    rows = []
    for (s, r), seeds in sorted(by_cell(data).items()):
        if len(seeds) < 2:
            continue
        accs = [float(np.mean(x)) for x in seeds]
        a, lo, hi = bootstrap_ci(seeds)
        rows.append([s, r, len(seeds), f"{np.mean(accs):.3f}", f"{np.std(accs, ddof=1):.3f}",
                     f"{min(accs):.3f}-{max(accs):.3f}", f"[{lo:.3f}, {hi:.3f}]"])
    return rows


def failure_counts(data: dict) -> dict[tuple, Counter]:
    cats: dict = {}
    for (s, r, _seed), ev in data["evals"].items():
        c = Counter(categorize(x, data["problems"][x["problem_id"]]) for x in ev)
        for k, v in c.items():
            cats.setdefault((s, r), Counter())[k] += v
    return cats


def failure_examples(data: dict, per_category: int = 3, chars: int = 500) -> dict[str, list[dict]]:
    """A few outputs per failure category, from different cells, so a reader sees what each label means."""
    out: dict[str, list[dict]] = defaultdict(list)
    for (s, r, seed), ev in sorted(data["evals"].items(), key=lambda kv: (kv[0][1] == "base", kv[0])):
        for x in ev:
            p = data["problems"][x["problem_id"]]
            cat = categorize(x, p)
            if cat == "correct" or len(out[cat]) >= per_category or any(e["cell"] == f"{s}/{r}" for e in out[cat]):
                continue
            q = p.get("query") or p["question"]
            out[cat].append({"cell": f"{s}/{r}", "seed": seed, "problem_id": x["problem_id"], "question": q[-300:],
                             "gold": str(x.get("gold")), "extracted": str(x.get("extracted")),
                             "output": x["output"][:chars] + ("…" if len(x["output"]) > chars else "")})
    return dict(sorted(out.items()))


def token_table(run: Path) -> tuple[str, list[list]] | None:
    p = run / "data" / "tokens.json"
    if not p.exists():
        return None
    tok = json.loads(p.read_text())
    budget = tok.get("budget")
    rows = []
    for r, v in tok["registers"].items():
        avail = v.get("available", v["total"])
        within = "-" if budget is None else ("yes" if v.get("within", True) else "NO")
        rows.append([r, v["total"], v["rows"], round(v["total"] / max(1, v["rows"]), 1), avail, within])
    return str(budget or "none (unmatched)"), rows


def eval_cost_rows(run: Path, data: dict) -> list[list]:
    """What each evaluation cost (its summary.json): generated tokens, tokens/s, rows cut at the token limit and
    rows stopped inside a loop. The trained cells' own speed, not only the benchmark's."""
    out = []
    for (s, r, seed), rows in sorted(data["evals"].items()):
        f = eval_dir(run, s, r, seed) / "summary.json"
        if not f.exists():
            continue
        sm = json.loads(f.read_text())
        at_limit = sum(1 for x in rows if x.get("truncated"))
        out.append([s, r, seed, f"{sm.get('backend', '?')} ({sm.get('precision', 'float32')})", sm.get("gen_tokens", 0),
                    f"{sm['gen_tokens'] / max(1, len(rows)):.0f}" if sm.get("gen_tokens") else "-",
                    sm.get("tokens_per_s") or "-", sm.get("gen_seconds", "-"), at_limit, sm.get("loops_stopped", 0)])
    return out
