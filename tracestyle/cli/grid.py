"""CLI subcommands for grids and reports: grid, report, quickstart."""

from __future__ import annotations

import csv
from pathlib import Path

from tracestyle.ablations.grid import run_grid
from tracestyle.ablations.spec import GridSpec
from tracestyle.errors import InputError
from tracestyle.reports.console import print_table
from tracestyle.reports.report import judge_run, write_report

QUICKSTART = {
    # small enough for 2 CPU cores in under 25 minutes, large enough to separate trained students from the base
    # (24 steps took 24.9 min of grid in the bench run of 2026-11-22 on this shared VM: 20 keeps a margin)
    "task": "kg", "kg": "devops", "registers": ["normal", "gold", "titanium", "diamond"],
    "students": ["smollm2-135m"], "seeds": [0], "train_n": 200, "eval_n": 40, "steps": 20, "batch_size": 8,
    # eval on unseen 1-3 hop paths (hash-disjoint from train); examples/kg_grid.yaml runs the 4-5 hop split
    "train_hops": [1, 3], "eval_hops": [1, 3], "eval_max_new_tokens": 160, "eval_batch_size": 20,
}


def _print_results(out: Path) -> None:
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    print_table(f"results ({out / 'results.csv'})", ["student", "register", "seed", "accuracy", "95% CI", "n"],
                [[r["student"], r["register"], r["seed"], r["accuracy"], f"[{r['ci_low']}, {r['ci_high']}]", r["n"]]
                 for r in rows])


def cmd_grid(args) -> int:
    spec = GridSpec.load(args.spec)
    if args.executor:
        spec.executor = args.executor
    out = run_grid(spec, args.out, args.quiet)
    _print_results(out)
    return 0


def cmd_report(args) -> int:
    run = Path(args.run_dir)
    if not (run / "spec.json").exists():
        raise InputError("not a grid run directory (no spec.json)", str(run))
    if args.judge_base_url:
        n = judge_run(run, args.judge_base_url, args.judge_model, args.api_key_env, args.taxonomy)
        print(f"LLM judge labelled {n} wrong answers")
    path = write_report(run)
    _print_results(run)
    print(f"wrote {path} and {run / 'report.md'}")
    return 0


def cmd_quickstart(args) -> int:
    """The README's main job: a small KG grid on the bundled student, CPU only, offline."""
    spec = GridSpec(**QUICKSTART)
    spec.validate()
    out = run_grid(spec, args.out, args.quiet)
    _print_results(out)
    print(f"report: {out / 'report.html'}  ({out / 'report.md'}, {out / 'results.csv'})")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("grid", help="run a grid spec (YAML): task x registers x students x seeds")
    p.add_argument("spec")
    p.add_argument("--out", required=True)
    p.add_argument("--executor", default=None, choices=["local", "ray"])
    p.set_defaults(fn=cmd_grid)

    p = sub.add_parser("report", help="write report.md, report.html and results.csv for a grid run")
    p.add_argument("run_dir")
    p.add_argument("--judge-base-url", default=None, help="also label wrong answers with an LLM judge at this URL")
    p.add_argument("--judge-model", default="smollm2")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--taxonomy", default=None, help="YAML with 'categories: {name: description}'")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("quickstart", help="the main job: a small KG grid on the bundled student (CPU)")
    p.add_argument("--out", default="runs/quickstart")
    p.set_defaults(fn=cmd_quickstart)
