"""The grid report: results.csv, report.md and a self-contained report.html rendered from a Jinja template
(plots inlined as PNG), led by a plain-words headline per student size."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from tracestyle.conditions import conditions_of
from tracestyle.jsonl import atomic_write_text, read_jsonl
from tracestyle.layout import eval_dir
from tracestyle.reports import analysis, plots
from tracestyle.reports.judge_labels import DEFAULT_TAXONOMY, label_evals
from tracestyle.reports.nll import nll_points, nll_table, spearman
from tracestyle.reports.refine_table import refine_rows, refine_summary
from tracestyle.reports.rl_tables import after_sft_tables, reward_curves
from tracestyle.reports.stats import bootstrap_ci
from tracestyle.reports.validity import validity_tables
from tracestyle.tasks import TASKS, get_task

CSV_FIELDS = ["student", "register", "seed", "accuracy", "ci_low", "ci_high", "n", "precision", "engine", "train_threads",
              "eval_threads", "path_valid_rate",
              "steps_valid_rate", "right_answer_wrong_steps", "wrong_answer_valid_steps"]


def _table(tid: str, title: str, cols: list[str], rows: list[list], note: str = "") -> dict:
    return {"id": tid, "title": title, "cols": cols, "rows": rows, "note": note}


def build_sections(run: Path) -> dict:
    data = analysis.collect(run)
    spec, problems = data["spec"], data["problems"]
    results = analysis.results_rows(data)
    agg = analysis.by_cell(data)
    cols = ["base"] + conditions_of(spec)
    tables = []
    rows = []
    for s in spec["students"]:
        info = analysis.student_info(s)
        row = [f"{s} ({info['size']}, {info['family']})"]
        for r in cols:
            if (s, r) in agg:
                a, lo, hi = bootstrap_ci(agg[(s, r)])
                row.append(f"{a:.3f} [{lo:.3f}, {hi:.3f}]")
            else:
                row.append("-")
        rows.append(row)
    tables.append(_table("accuracy", "Accuracy by student size x register (95% bootstrap CI over problems and seeds)",
                         ["student"] + cols, rows))
    refine = refine_rows(run)
    if refine:
        tables.append(_table(
            "refine", "Refinement rounds: the register revised from each student's own failures",
            ["student", "round", "register version", "what changed (for which failure category)",
             "accuracy [95% CI]", "vs the version it revised [95% CI], p (Holm)", "vs round 0 [95% CI], p (Holm)",
             "targeted failures (before → after)", "other category that rose most", "NLL before training (change)",
             "tokens trained on", "status"], refine,
            " ".join(refine_summary(run)) + " Each round trains on the same token budget as round 0 and is evaluated "
            "on the same held-out problems; NLL is the untrained student's mean per token on the version's traces "
            "(lower: closer to what it already finds likely). Failure counts are averaged over seeds."))
    comps = analysis.comparisons(data)
    tables.append(_table(
        "comparisons", "Paired comparisons on the same problems (McNemar; p Holm-corrected per student)",
        ["student", "pair", "accuracy", "difference [95% CI]", "Cohen's h", "only first", "only second", "p",
         "p (Holm)", "detectable at n"],
        [[c["student"], f"{c['a']} vs {c['b']}", f"{c['acc_a']:.3f} → {c['acc_b']:.3f}",
          f"{100 * c['diff']:+.1f} [{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}]", f"{c['cohen_h']:+.2f}",
          c["a_only"], c["b_only"], f"{c['p']:.3g}", f"{c['p_holm']:.3g}", f"≥ {100 * c['mde']:.0f} points"]
         for c in comps],
        "difference: accuracy of the second minus the first, in points; 'detectable': the smallest difference this "
        "test finds with 80% power at the strictest Holm level, given the observed discordance; a 'no difference' "
        "means only that no larger difference was there to find."))
    spread = analysis.seed_spread(data)
    if spread:
        tables.append(_table("seeds", "Spread across seeds (beside the interval over questions and seeds)",
                             ["student", "register", "seeds", "mean", "sd", "range", "95% CI"], spread))
    counts = analysis.failure_counts(data)
    names = sorted({k for c in counts.values() for k in c if k != "correct"})
    frows = []
    for (s, r), c in sorted(counts.items()):
        base = counts.get((s, "base"), Counter())
        frows.append([s, r] + [f"{c[k]}" + ("" if r == "base" else f" ({c[k] - base[k]:+d})") for k in names])
    tables.append(_table("failures", "Failure categories (change against the base model)",
                         ["student", "register"] + names, frows))
    judge_rows = _judge_table(run, data)
    if judge_rows:
        names_j = sorted({k for _, _, c in judge_rows for k in c})
        tables.append(_table("judge", "LLM-judge failure labels (kept apart from the rule labels above)",
                             ["student", "register"] + names_j,
                             [[s, r] + [c.get(k, 0) for k in names_j] for s, r, c in judge_rows]))
    key = get_task(spec["task"]).difficulty_key
    levels = sorted({p["difficulty"].get(key) for p in problems.values()}, key=lambda v: (v is None, v))
    srows = []
    for (s, r, seed), ev in sorted(data["evals"].items()):
        row = [s, r, seed]
        for lv in levels:
            sel = [x["correct"] for x in ev if problems[x["problem_id"]]["difficulty"].get(key) == lv]
            row.append(f"{sum(sel) / len(sel):.2f} (n={len(sel)})" if sel else "-")
        srows.append(row)
    tables.append(_table("difficulty", f"Accuracy by difficulty ({key})",
                         ["student", "register", "seed"] + [str(v) for v in levels], srows))
    tok = analysis.token_table(run)
    if tok:
        budget, trows = tok
        tables.append(_table("tokens", f"Training token budget per register (budget: {budget})",
                             ["register", "tokens trained on", "traces", "tokens/trace",
                              "tokens of all its curated traces (unmatched)", "within 1%"], trows,
                             "the unmatched column is what each register's traces cost before matching: a register "
                             "that wins unmatched may only have been given more tokens."))
    tables += validity_tables(data["evals"])
    after_rl = [c for c in comps if "@" in c["b"] and c["a"] == c["b"].split("@")[0]]
    rl_pairs = [c for c in comps if "@" in c["a"] and "@" in c["b"]]
    # each variant's method as spec.json holds it (recipe sft+grpo or grpo: one GRPO variant, not listed)
    methods = {v["name"]: v.get("method", "grpo") for v in spec.get("rl") or []} or {"grpo": "grpo"}
    what = " and ".join(m.upper() for m in ("grpo", "rsft") if m in methods.values())
    derived = [c for c in comps if c["a"] != "base" and c["b"] not in spec["registers"] and "@" not in c["b"]]
    for tid, title, (first, second), rows, note in (
            ("rl_vs_start", f"{what} cells against where they started (the register's SFT adapter, or the base model)",
             ("start", "after"), after_rl, "the same held-out problems; GRPO and RSFT trained on the train split only."),
            ("rl_methods", "Variants from the same start against each other (SFT then GRPO or RSFT)",
             ("variant a", "variant b"), rl_pairs,
             "the same held-out problems and the same SFT adapter (or base model) underneath: which step to take "
             "after SFT. " + "; ".join(f"{n}: {m.upper()}" for n, m in methods.items())),
            ("derived", "Corrupted and mixed traces against the clean register(s) they come from (same problems)",
             ("clean", "condition"), derived,
             "a corruption keeps every final answer right: a drop against the clean register is what the wrong, "
             "shuffled or missing steps taught.")):
        if rows:
            tables.append(_table(tid, title, ["student", first, second, f"accuracy {first} → {second}",
                                              "difference [95% CI]", "p (Holm)"], [_pair_row(c) for c in rows], note))
    tables += after_sft_tables(run, spec)
    cost = analysis.eval_cost_rows(run, data)
    if cost:
        tables.append(_table(
            "eval_cost", "Evaluation cost per cell",
            ["student", "register", "seed", "engine (precision)", "tokens generated", "tokens/answer", "tokens/s", "seconds",
             "cut (limit or loop)", "of them loops stopped"], cost,
            "tokens/s over generation only (prompt pass included, model loading not); a row stopped inside a loop "
            "is scored as cut at the limit (distill/loops.py)."))
    points = nll_points(run, data, agg)
    nt = nll_table(points, spearman(points))
    if nt:
        tables.append(nt)
    students = [analysis.student_info(s) for s in spec["students"]]
    return {"results": results, "tables": tables, "data": data, "comparisons": comps, "nll_points": points,
            "headlines": analysis.headlines(data, comps), "examples": analysis.failure_examples(data),
            "counts": counts, "names": names, "students": students}


def _pair_row(c: dict) -> list:
    return [c["student"], c["a"], c["b"], f"{c['acc_a']:.3f} → {c['acc_b']:.3f}",
            f"{100 * c['diff']:+.1f} [{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}]", f"{c['p_holm']:.3g}"]


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
    data = analysis.collect(run)
    evals = [(eval_dir(run, s, r, seed), rows) for (s, r, seed), rows in sorted(data["evals"].items())]
    return label_evals(evals, data["problems"], base_url=base_url, model=model, api_key_env=api_key_env,
                       taxonomy=taxonomy or DEFAULT_TAXONOMY, cache=run / "judge_cache.jsonl")


def _header(run: Path, data: dict, students: list[dict]) -> list[str]:
    spec = data["spec"]
    tr = {p["id"] for p in read_jsonl(run / "problems" / "train.jsonl")}
    overlap = tr & set(data["problems"])
    leaks = []
    for man in run.glob("cells/**/manifest.json"):
        if json.loads(man.read_text()).get("eval_leak"):
            leaks.append(str(man.parent.relative_to(run)))
    hops = get_task(spec["task"]).split_note(spec) if spec["task"] in TASKS.names() else ""
    lines = [f"Task {spec['task']}{hops}; {len(data['problems'])} held-out questions; train/eval problem-id overlap: "
             f"{len(overlap)}; curated traces checked against eval questions (overlap filter)."]
    fams = {s["family"] for s in students}
    if len(students) > 1:
        desc = ", ".join(f"{s['name']} ({s['size']}, {s['family']})" for s in students)
        lines.append(f"Students: {desc}. " + ("They differ in model family as well as size: a scale trend here "
                                              "mixes the two." if len(fams) > 1 else "One family, several sizes."))
    if spec.get("teacher"):
        lines.append(f"Teacher: {spec.get('teacher_name') or spec['teacher']}; token budget: "
                     f"{spec.get('token_budget', 'none')}; seeds: {spec.get('seeds')}.")
    gen = run / "gen" / "manifest.json"
    use = (json.loads(gen.read_text()).get("usage") or {}).get("per_register") if gen.exists() else None
    if use:
        lines.append("Teacher tokens per register (prompt / completion): " + "; ".join(
            f"{r} {u['prompt_tokens']:,} / {u['completion_tokens']:,}" +
            (f" (est. ${u['cost_usd']:.4f})" if "cost_usd" in u else "") for r, u in use.items()) + ".")
    tok = run / "data" / "tokens.json"
    empty = [c for c, v in json.loads(tok.read_text()).get("registers", {}).items() if not v.get("rows")] \
        if tok.exists() else []
    if empty:
        lines.append("Not trained (no curated trace survived the filters): " + ", ".join(empty) + ".")
    cur = run / "curated" / "manifest.json"
    dc = json.loads(cur.read_text()).get("counts", {}).get("decontam") if cur.exists() else None
    if dc:
        lines.append(f"Decontamination ({dc['n']}-gram overlap with {dc['eval_problems']} eval problems and "
                     f"{dc['gsm8k_test']} GSM8K test problems): {dc['hits']} curated traces dropped.")
    extra = []
    if spec.get("corruption"):
        extra.append(f"corrupted traces ({', '.join(spec['corruption'])}) of "
                     f"{', '.join(spec.get('corruption_registers') or spec['registers'])}, final answers kept right")
    if spec.get("mix"):
        extra.append("register mixes by token share: " + ", ".join(
            " + ".join(f"{round(100 * v)}% {r}" for r, v in m.items()) for m in spec["mix"]))
    if spec.get("curriculum", "none") != "none":
        extra.append(f"curriculum: {spec['curriculum']} (by {get_task(spec['task']).difficulty_key})")
    if "rsft" in spec.get("recipe", ""):
        extra.append(f"RSFT pool: {spec.get('rsft_pool', 'train')}")
    if extra:
        lines.append("Training conditions beyond the registers: " + "; ".join(extra) + ".")
    precisions = sorted({sm.get("precision", "float32") for sm in data.get("summaries", {}).values()})
    engines = sorted({sm.get("backend", "?") for sm in data.get("summaries", {}).values()})
    m = spec.get("machine") or {}
    where = f" on {m['cpu']} ({' '.join(m.get('flags', [])) or 'no bf16 flags'})" if m else ""
    lines.append(f"Precision: {', '.join(precisions) or '-'}{where}; evaluation engine(s): {', '.join(engines) or '-'}."
                 + (" MIXED PRECISIONS: cells computed in different number formats are compared here."
                    if len(precisions) > 1 else ""))
    said = {k: sorted({sm[k] for sm in data.get("summaries", {}).values() if sm.get(k) is not None})
            for k in ("train_threads", "threads")}
    if said["train_threads"] or said["threads"]:
        lines.append(f"Threads per job: training {'/'.join(map(str, said['train_threads'])) or '-'}, evaluation "
                     f"{'/'.join(map(str, said['threads'])) or '-'}."
                     + (" MIXED THREAD COUNTS: bf16 rows and LoRA training round differently at another thread count "
                        "(rerun with one --workers setting to compare like with like)."
                        if any(len(v) > 1 for v in said.values()) else ""))
    lines.append("EVAL LEAK OVERRIDE used in: " + ", ".join(leaks) if leaks else "No eval-leak override was used.")
    return lines


def _env() -> Environment:
    # HTML-escaped for the page, not for the Markdown
    html_only = select_autoescape(enabled_extensions=("html.j2",), default_for_string=False)
    return Environment(loader=FileSystemLoader(str(Path(__file__).parent)), autoescape=html_only,
                       trim_blocks=True, lstrip_blocks=True)


def write_report(run: str | Path) -> Path:
    run = Path(run)
    sec = build_sections(run)
    data, results = sec["data"], sec["results"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    w.writerows(results)
    atomic_write_text(run / "results.csv", buf.getvalue())
    head = _header(run, data, sec["students"])
    imgs = []
    if results:
        imgs.append(("plot-scale", "Accuracy against student size, one line per register",
                     plots.scale_by_style(results, sec["students"])))
        imgs.append(("plot-cells", "Accuracy per cell with 95% CI", plots.accuracy_bars(results)))
    heat = plots.failure_heatmap(sec["counts"], sec["names"])
    if heat:
        imgs.append(("plot-failures", "Failure categories against the base model", heat))
    scatter = plots.nll_scatter(sec["nll_points"])
    if scatter:
        imgs.append(("plot-nll", "NLL before training against the accuracy gain over the base model", scatter))
    loss = plots.loss_curves(run, data["spec"])
    if loss:
        imgs.append(("plot-loss", "Train and held-out loss per register", loss))
    curves = reward_curves(run, data["spec"])
    if curves:
        imgs.append(("plot-reward", "GRPO: mean reward per step, and the share of groups with one reward", curves))
    ctx = {"head": head, "headlines": sec["headlines"], "tables": sec["tables"], "images": imgs,
           "examples": sec["examples"]}
    env = _env()
    atomic_write_text(run / "report.md", env.get_template("report.md.j2").render(**ctx))
    atomic_write_text(run / "report.html", env.get_template("report.html.j2").render(**ctx))
    return run / "report.html"
