"""The grid report: results.csv, report.md and a self-contained report.html (plots inlined as PNG)."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections import Counter, defaultdict
from pathlib import Path

from tracestyle.jsonl import atomic_write_text, read_jsonl
from tracestyle.layout import cell_dir, eval_dir
from tracestyle.reports.judge_labels import DEFAULT_TAXONOMY, label_eval
from tracestyle.reports.stats import bootstrap_ci, chi2_2x2, mcnemar
from tracestyle.reports.taxonomy import categorize
from tracestyle.tasks import get_task


def _eval_rows(path: Path) -> list[dict] | None:
    p = path / "eval.jsonl"
    return read_jsonl(p, allow_empty=True) if p.exists() and (path / "manifest.json").exists() else None


def collect(run: Path) -> dict:
    spec = json.loads((run / "spec.json").read_text())
    problems = {p["id"]: p for p in read_jsonl(run / "problems" / "eval.jsonl")}
    evals: dict[tuple, list[dict]] = {}
    for s in spec["students"]:
        rows = _eval_rows(eval_dir(run, s, "base", 0))
        if rows is not None:
            evals[(s, "base", 0)] = rows
        for r in spec["registers"]:
            for seed in spec["seeds"]:
                rows = _eval_rows(eval_dir(run, s, r, seed))
                if rows is not None:
                    evals[(s, r, seed)] = rows
    return {"spec": spec, "problems": problems, "evals": evals}


def results_rows(data: dict) -> list[dict]:
    out = []
    for (s, r, seed), rows in sorted(data["evals"].items()):
        acc, lo, hi = bootstrap_ci([bool(x["correct"]) for x in rows], seed=seed)
        out.append({"student": s, "register": r, "seed": seed, "accuracy": round(acc, 4), "ci_low": round(lo, 4),
                    "ci_high": round(hi, 4), "n": len(rows),
                    "path_valid_rate": round(sum(bool(x.get("path_valid")) for x in rows) / max(1, len(rows)), 4)})
    return out


def _by_register(data: dict) -> dict:
    """(student, register) -> list over seeds of per-problem correctness in a fixed problem order."""
    ids = sorted(data["problems"])
    agg: dict = defaultdict(list)
    for (s, r, _seed), rows in data["evals"].items():
        m = {x["problem_id"]: bool(x["correct"]) for x in rows}
        if all(i in m for i in ids):
            agg[(s, r)].append([m[i] for i in ids])
    return agg


def _plot_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _loss_plot(run: Path, spec: dict) -> str | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    drawn = False
    for s in spec["students"]:
        for r in spec["registers"]:
            p = cell_dir(run, s, r, spec["seeds"][0]) / "adapter" / "metrics.jsonl"
            if not p.exists():
                continue
            m = [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
            line, = ax.plot([x["step"] for x in m], [x["loss"] for x in m], label=f"{r} train")
            ev = [x for x in m if "eval_loss" in x]
            if ev:
                ax.plot([x["step"] for x in ev], [x["eval_loss"] for x in ev], "--o", color=line.get_color(),
                        label=f"{r} eval")
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("step")
    ax.set_ylabel("completion loss")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    return _plot_png(fig)


def _acc_plot(results: list[dict]) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = [f"{r['student']}\n{r['register']} s{r['seed']}" for r in results]
    acc = [r["accuracy"] for r in results]
    err = [[r["accuracy"] - r["ci_low"] for r in results], [r["ci_high"] - r["accuracy"] for r in results]]
    ax.bar(range(len(acc)), acc, yerr=err, capsize=3, color=["#999" if r["register"] == "base" else "#4a7"
                                                              for r in results])
    ax.set_xticks(range(len(acc)), labels, fontsize=7)
    ax.set_ylabel("accuracy (95% CI)")
    return _plot_png(fig)


def build_sections(run: Path) -> tuple[list[dict], list[tuple[str, list[str], list[list]]], dict]:
    data = collect(run)
    spec, problems = data["spec"], data["problems"]
    results = results_rows(data)
    tables = []
    agg = _by_register(data)
    cols = ["base"] + spec["registers"]
    rows = []
    for s in spec["students"]:
        row = [s]
        for r in cols:
            if (s, r) in agg:
                a, lo, hi = bootstrap_ci(agg[(s, r)])
                row.append(f"{a:.3f} [{lo:.3f}, {hi:.3f}]")
            else:
                row.append("-")
        rows.append(row)
    tables.append(("Accuracy by student size x register (95% bootstrap CI over problems and seeds)",
                   ["student"] + cols, rows))
    # failure taxonomy
    cats: dict = {}
    for (s, r, _seed), ev in data["evals"].items():
        c = Counter(categorize(x, problems[x["problem_id"]]) for x in ev)
        for k, v in c.items():
            cats.setdefault((s, r), Counter())[k] += v
    names = sorted({k for c in cats.values() for k in c if k != "correct"})
    frows = []
    for (s, r), c in sorted(cats.items()):
        base = cats.get((s, "base"), Counter())
        frows.append([s, r] + [f"{c[k]}" + ("" if r == "base" else f" ({c[k] - base[k]:+d})") for k in names])
    tables.append(("Failure categories (change against the base model)", ["student", "register"] + names, frows))
    judge_rows = _judge_table(run, data)
    if judge_rows:
        names_j = sorted({k for _, _, c in judge_rows for k in c})
        tables.append(("LLM-judge failure labels (kept apart from the rule labels above)",
                       ["student", "register"] + names_j,
                       [[s, r] + [c.get(k, 0) for k in names_j] for s, r, c in judge_rows]))
    # difficulty strata
    key = get_task(spec["task"]).difficulty_key
    levels = sorted({p["difficulty"].get(key) for p in problems.values()})
    srows = []
    for (s, r, seed), ev in sorted(data["evals"].items()):
        row = [s, r, seed]
        for lv in levels:
            sel = [x["correct"] for x in ev if problems[x["problem_id"]]["difficulty"].get(key) == lv]
            row.append(f"{sum(sel) / len(sel):.2f} (n={len(sel)})" if sel else "-")
        srows.append(row)
    tables.append((f"Accuracy by difficulty ({key})", ["student", "register", "seed"] + [str(v) for v in levels],
                   srows))
    tok_path = run / "data" / "tokens.json"
    if tok_path.exists():
        tok = json.loads(tok_path.read_text())
        trows = [[r, v["total"], v["rows"], round(v["total"] / max(1, v["rows"]), 1)]
                 for r, v in tok["registers"].items()]
        tables.append((f"Training token budget per register (budget: {tok.get('budget') or 'none'})",
                       ["register", "total tokens", "traces", "tokens/trace"], trows))
    if any("path_valid" in x for ev in data["evals"].values() for x in ev):
        vrows = []
        for (s, r, seed), ev in sorted(data["evals"].items()):
            t = chi2_2x2([bool(x.get("path_valid")) for x in ev], [bool(x["correct"]) for x in ev])
            (a, b), (c, d) = t["table"]
            vrows.append([s, r, seed, a, b, c, d, "-" if t["p_value"] is None else f"{t['p_value']:.3g}"])
        tables.append(("Trace-valid x answer-correct (chi-square test of independence)",
                       ["student", "register", "seed", "valid&correct", "valid&wrong", "invalid&correct",
                        "invalid&wrong", "p"], vrows))
    mrows = []
    for s in spec["students"]:
        for r in spec["registers"]:
            if (s, "base") in agg and (s, r) in agg:
                m = mcnemar(agg[(s, "base")][0], agg[(s, r)][0])
                mrows.append([s, f"base vs {r}", m["a_only"], m["b_only"], f"{m['p_value']:.3g}"])
        regs = [r for r in spec["registers"] if (s, r) in agg]
        for i, a in enumerate(regs):
            for b in regs[i + 1:]:
                m = mcnemar(agg[(s, a)][0], agg[(s, b)][0])
                mrows.append([s, f"{a} vs {b}", m["a_only"], m["b_only"], f"{m['p_value']:.3g}"])
    tables.append(("Paired comparisons on the same problems (McNemar, first seed)",
                   ["student", "pair", "only first correct", "only second correct", "p"], mrows))
    return results, tables, data


def _judge_table(run: Path, data: dict) -> list[tuple[str, str, Counter]]:
    out = []
    for (s, r, seed) in sorted(data["evals"]):
        p = eval_dir(run, s, r, seed) / "judge_labels.jsonl"
        if p.exists():
            out.append((s, r, Counter(x["judge_label"] for x in read_jsonl(p, allow_empty=True))))
    return out


def judge_run(run: str | Path, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY",
              taxonomy: str | None = None) -> int:
    """Label the wrong answers of every evaluation in a run with the LLM judge."""
    run = Path(run)
    data = collect(run)
    n = 0
    for (s, r, seed), rows in sorted(data["evals"].items()):
        n += len(label_eval(eval_dir(run, s, r, seed), rows, data["problems"], base_url=base_url, model=model,
                            api_key_env=api_key_env, taxonomy=taxonomy or DEFAULT_TAXONOMY))
    return n


def _header(run: Path, data: dict) -> list[str]:
    spec = data["spec"]
    tr = {p["id"] for p in read_jsonl(run / "problems" / "train.jsonl")}
    overlap = tr & set(data["problems"])
    leaks = []
    for man in run.glob("cells/**/manifest.json"):
        if json.loads(man.read_text()).get("eval_leak"):
            leaks.append(str(man.parent.relative_to(run)))
    lines = [f"Task {spec['task']}; train split {spec.get('train_hops')} hops, eval split {spec.get('eval_hops')} "
             f"hops; train/eval problem-id overlap: {len(overlap)}; curated traces checked against eval questions "
             "(overlap filter)."]
    lines.append("EVAL LEAK OVERRIDE used in: " + ", ".join(leaks) if leaks else "No eval-leak override was used.")
    return lines


def write_report(run: str | Path) -> Path:
    run = Path(run)
    results, tables, data = build_sections(run)
    fields = ["student", "register", "seed", "accuracy", "ci_low", "ci_high", "n", "path_valid_rate"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(results)
    atomic_write_text(run / "results.csv", buf.getvalue())
    head = _header(run, data)
    md = ["# tracestyle report", ""] + [f"> {h}" for h in head] + [""]
    for title, cols, rows in tables:
        md += [f"## {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        md += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows] + [""]
    atomic_write_text(run / "report.md", "\n".join(md))
    imgs = [("Accuracy with 95% CI", _acc_plot(results))] if results else []
    loss = _loss_plot(run, data["spec"])
    if loss:
        imgs.append(("Train and held-out loss per register", loss))
    h = ["<!doctype html><html><head><meta charset='utf-8'><title>tracestyle report</title><style>",
         "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;"
         "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}th{background:#eee}"
         ".note{background:#fff6d5;padding:8px;border-left:4px solid #e0b000}</style></head><body>",
         "<h1>tracestyle report</h1>"] + [f"<p class='note'>{html.escape(x)}</p>" for x in head]
    for title, cols, rows in tables:
        h.append(f"<h2>{html.escape(title)}</h2><table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols)
                 + "</tr>" + "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in r) + "</tr>"
                                     for r in rows) + "</table>")
    for title, png in imgs:
        h.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>")
    h.append("</body></html>")
    atomic_write_text(run / "report.html", "\n".join(h))
    return run / "report.html"
