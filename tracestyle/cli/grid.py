"""CLI subcommands for grids and reports: grid, refine, report, compare, quickstart."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from tracestyle.ablations.grid import run_grid
from tracestyle.ablations.plan import plan
from tracestyle.ablations.refine import run_refine
from tracestyle.ablations.spec import GridSpec
from tracestyle.cli.students import add_precision_arg
from tracestyle.errors import InputError
from tracestyle.jsonl import atomic_write_text
from tracestyle.precision import normalise
from tracestyle.reports.compare import compare_markdown, compare_runs
from tracestyle.reports.console import print_table
from tracestyle.reports.report import judge_run, write_report

QUICKSTART = {
    # the scale x style grid: both bundled students (135M SmolLM2, 270M Gemma 3: size and family differ) x the four
    # registers, every register trained one full pass over the same number of trace tokens (4,000 under the first
    # student's tokenizer; the shortest register holds ~9,000 over 200 problems, so every register has traces left
    # for its held-out loss), evaluated on 200 unseen 1-3 hop questions (hash-disjoint from train) with the CPU
    # evaluation engine. examples/kg_grid.yaml runs the easy-to-hard (4-5 hop) split with seeds.
    "task": "kg", "kg": "devops", "registers": ["normal", "gold", "titanium", "diamond"],
    "students": ["smollm2-135m", "gemma3-270m"], "seeds": [0], "train_n": 200, "eval_n": 200,
    "token_budget": 4000, "epochs": 1, "batch_size": 4, "distractors": 2,
    "train_hops": [1, 3], "eval_hops": [1, 3], "eval_max_new_tokens": "auto", "eval_batch_size": 100,
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
    if args.workers:
        spec.workers = _workers(args.workers)
    if args.precision:
        spec.precision = normalise(args.precision)
    if args.dry_run:
        return _dry_run(spec)
    if not args.out:
        raise InputError("give --out (where the run goes), or --dry-run to see the plan", field="out")
    # a spec with `refine:` is a refinement loop, whichever command runs it
    out = run_refine(spec, args.out, args.quiet) if spec.refine is not None else run_grid(spec, args.out, args.quiet)
    _print_results(out)
    return 0


def cmd_refine(args) -> int:
    spec = GridSpec.load(args.spec)
    if args.precision:
        spec.precision = normalise(args.precision)
    spec.refine = {**(spec.refine or {}), **({"rounds": args.rounds} if args.rounds is not None else {})}
    spec.validate(args.spec)
    out = run_refine(spec, args.out, args.quiet)
    _print_results(out)
    print(f"report: {out / 'report.html'}  (rounds per student: {out / 'cells'}/<student>/refine/rounds.json)")
    return 0


def _dry_run(spec: GridSpec) -> int:
    rows, blockers = plan(spec)
    cols = ["student", "stage", "cells", "backend", "device", "precision", "weights", "peak GiB", "micro-batch",
            "min/cell"]
    table = [[str(x) for x in (r["student"], r["stage"], r.get("cells", "-"), r.get("backend", "-"),
                               r.get("device", "-"), r.get("precision", "-"), r.get("weights", "-"),
                               r.get("peak_gib", "-"), r.get("micro_batch", r.get("note", "-")),
                               r.get("minutes_per_cell") if r.get("minutes_per_cell") is not None else "?")]
             for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    print("plan (peak memory and minutes per cell are estimates from each model's shape, not measurements)")
    for line in [cols] + table:
        print("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip())
    for b in blockers:
        print(f"blocker: {b}", file=sys.stderr)
    if blockers:
        return 2
    print("no blockers found")
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
    spec = GridSpec(**QUICKSTART, precision=normalise(args.precision), workers=_workers(args.workers or "auto"))
    spec.validate()
    out = run_grid(spec, args.out, args.quiet)
    _print_results(out)
    print(f"report: {out / 'report.html'}  ({out / 'report.md'}, {out / 'results.csv'})")
    return 0


def cmd_compare(args) -> int:
    res = compare_runs(args.run_a, args.run_b)
    text = compare_markdown(res)
    if args.out:
        atomic_write_text(Path(args.out), text)
    print_table(f"{res['label_b']} (B) against {res['label_a']} (A), paired on the same questions",
                ["student", "register", "seed", "n", "A", "B", "B - A [95% CI]", "p (Holm)", "same"],
                [[c["student"], c["register"], c["seed"], c["n"], f"{c['acc_a']:.3f}", f"{c['acc_b']:.3f}",
                  f"{100 * c['diff']:+.1f} [{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}]",
                  f"{c['p_holm']:.3g}", f"{100 * c['agree']:.0f}%"] for c in res["cells"]])
    print(f"report conclusions that differ between the runs: {res['changed']} of {len(res['conclusions'])}")
    for c in res["conclusions"]:
        if c["changed"]:
            print(f"  {c['student']} {c['pair']}: A {c['a']}; B {c['b']}")
    return 0


def _workers(v: str) -> int | str:
    if v == "auto":
        return v
    try:
        n = int(v)
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"--workers takes auto or a positive integer, got {v!r}", field="workers")
    return n


def add_workers_arg(p) -> None:
    p.add_argument("--workers", default=None,
                   help="jobs at once on this machine (local executor): auto (default) measures, once per machine, one "
                        "job on every core against one single-thread job per core; 1 runs them one at a time")


def add_commands(sub) -> None:
    p = sub.add_parser("grid", help="run a grid spec (YAML): task x registers x students x seeds")
    p.add_argument("spec")
    p.add_argument("--out", default=None)
    p.add_argument("--dry-run", action="store_true",
                   help="print each stage's backend, device, precision, estimated memory and time, and every blocker "
                        "found without loading a model; exit 2 when there is one")
    p.add_argument("--executor", default=None, choices=["local", "ray"])
    add_workers_arg(p)
    add_precision_arg(p)
    p.set_defaults(fn=cmd_grid)

    p = sub.add_parser("refine", help="refine a register round by round from the student's own failures "
                                      "(a grid spec; its refine: options)")
    p.add_argument("spec")
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, default=None, help="rounds after round 0 (default: the spec's, or 3)")
    add_precision_arg(p)
    p.set_defaults(fn=cmd_refine)

    p = sub.add_parser("report", help="write report.md, report.html and results.csv for a grid run")
    p.add_argument("run_dir")
    p.add_argument("--judge-base-url", default=None, help="also label wrong answers with an LLM judge at this URL")
    p.add_argument("--judge-model", default="smollm2")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--taxonomy", default=None, help="YAML with 'categories: {name: description}'")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("compare", help="two runs of one grid (e.g. bfloat16 and float32), paired cell by cell: "
                                       "accuracy differences with CIs and the report conclusions that change")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--out", default=None, help="also write the comparison as Markdown here")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("quickstart", help="the main job: a scale x style KG grid on the two bundled students (CPU)")
    p.add_argument("--out", default="runs/quickstart")
    add_workers_arg(p)
    add_precision_arg(p)
    p.set_defaults(fn=cmd_quickstart)
