"""The `tracestyle` command: one subcommand per stage. Bad input prints one line and exits 2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tracestyle.errors import InputError


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _hops(s: str) -> tuple[int, int]:
    try:
        lo, _, hi = s.partition("-")
        return int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"hop range '{s}' must look like 1-3") from None


def _problems(args) -> list[dict]:
    from tracestyle.curate.gsm8k import load_gsm8k
    from tracestyle.curate.kg_questions import generate_kg_problems
    from tracestyle.jsonl import read_jsonl, strip_meta

    if getattr(args, "problems", None):
        rows = read_jsonl(args.problems, required=("id", "task", "question", "gold"))
        return [strip_meta(r) for r in rows]
    if args.task == "gsm8k":
        split = {"eval": "test"}.get(args.split, args.split)
        if args.n is not None and args.n < 1:
            raise InputError("n must be at least 1", field="n")
        return load_gsm8k(split, args.data, args.n)
    if args.task == "kg":
        ranges = {"train": args.train_hops, "eval": args.eval_hops}
        return generate_kg_problems(args.domain, args.split, 100 if args.n is None else args.n, args.seed, ranges, args.mc,
                                    not args.closed_book)
    raise InputError(f"unknown task '{args.task}' (gsm8k, kg)", field="task")


def _add_task_args(p: argparse.ArgumentParser, problems_file: bool = True) -> None:
    p.add_argument("--task", default="gsm8k", choices=["gsm8k", "kg"])
    p.add_argument("--split", default="train", help="gsm8k: train|test; kg: train|eval")
    p.add_argument("--n", type=int, default=None, help="number of problems (default: all for gsm8k, 100 for kg)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="GSM8K folder/file, or hf:<dataset id> (default ../shared/data/gsm8k)")
    p.add_argument("--domain", default="devops", help="KG: devops, world, or a KG .json file")
    p.add_argument("--train-hops", type=_hops, default=(1, 3))
    p.add_argument("--eval-hops", type=_hops, default=(4, 5))
    p.add_argument("--mc", action="store_true", help="KG: multiple choice (A-D)")
    p.add_argument("--closed-book", action="store_true", help="KG: no facts in the prompt")
    if problems_file:
        p.add_argument("--problems", default=None, help="a problems JSONL instead of --task/--split")


def cmd_problems(args) -> int:
    from tracestyle.jsonl import write_jsonl

    probs = _problems(args)
    n = write_jsonl(args.out, probs)
    print(f"wrote {n} problems to {args.out}")
    return 0


def cmd_generate(args) -> int:
    from tracestyle.curate.generate import generate
    from tracestyle.curate.teacher_openai import OpenAIConfig
    from tracestyle.prompts import load_registers

    registers = load_registers(_csv(args.registers), args.registers_dir)
    problems = _problems(args)
    ocfg = OpenAIConfig(base_url=args.base_url, model=args.model or "smollm2", api_key_env=args.api_key_env,
                        temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed, k=args.k,
                        concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm, timeout=args.timeout,
                        max_retries=args.max_retries, n_mode=args.n_mode)
    res = generate(problems, registers, args.out, args.teacher, ocfg if args.teacher != "template" else None,
                   args.cache, args.model, [args.problems] if args.problems else [], quiet=args.quiet)
    if res["skipped"]:
        print(f"{args.out}: complete (manifest matches); nothing to do")
    else:
        print(f"wrote {res['rows']} traces to {Path(args.out) / 'traces.jsonl'} ({res['failed']} failed)")
        if "usage" in res:
            print("usage: " + json.dumps(res["usage"]))
    return 0


def cmd_curate(args) -> int:
    from tracestyle.curate.curate import curate
    from tracestyle.prompts import load_registers

    registers = load_registers(None, args.registers_dir)
    fields = {k: v for k, v in {"id": args.id_field, "question": args.question_field, "gold": args.gold_field,
                                "text": args.text_field, "register": args.register_field}.items() if v}
    judge = None
    if "judge" in _csv(args.filters):
        from tracestyle.curate.judge import make_compliance_judge
        judge = make_compliance_judge(registers, args.judge_base_url, args.judge_model, args.api_key_env)
    res = curate(args.inp, args.out, args.task, _csv(args.filters), registers, fields, args.problems, args.eval_problems,
                 args.kg, args.min_chars, args.max_chars, judge, args.format == "parquet", args.quiet)
    if res.get("skipped"):
        print(f"{args.out}: complete (manifest matches); nothing to do")
        return 0
    from tracestyle.reports.console import print_curate_summary
    print_curate_summary(res)
    return 0


def cmd_stats(args) -> int:
    from tracestyle.curate.stats import dataset_stats
    from tracestyle.reports.console import print_stats

    print_stats(dataset_stats(args.path, args.tokenizer))
    return 0


def cmd_registers(args) -> int:
    from tracestyle.prompts import load_registers
    from tracestyle.reports.console import print_registers

    print_registers(load_registers(None, args.registers_dir))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tracestyle", description="Reasoning-trace curation and trace-style ablations.")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("problems", help="write a problems file (gsm8k or generated KG questions)")
    _add_task_args(p, problems_file=False)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_problems)

    p = sub.add_parser("generate", help="write traces: problems x registers x k samples")
    _add_task_args(p)
    p.add_argument("--registers", default="normal,gold,titanium,diamond")
    p.add_argument("--registers-dir", default=None)
    p.add_argument("--teacher", default="template", choices=["template", "openai", "vllm"])
    p.add_argument("--base-url", default="http://127.0.0.1:8080/v1")
    p.add_argument("--model", default=None)
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="name of the environment variable holding the key")
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rpm", type=float, default=None)
    p.add_argument("--tpm", type=float, default=None)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--max-retries", type=int, default=6)
    p.add_argument("--n-mode", default="auto", choices=["auto", "param", "repeat"])
    p.add_argument("--cache", default=None, help="response cache JSONL (default OUT/cache/responses.jsonl)")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_generate)

    p = sub.add_parser("curate", help="filter traces: kept.jsonl and dropped.jsonl with reasons")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--task", required=True, choices=["gsm8k", "kg"])
    p.add_argument("--filters", default="length,correct,kg_path,compliance,dedup")
    p.add_argument("--out", required=True)
    p.add_argument("--problems", default=None, help="problems JSONL to join by id (for traces made elsewhere)")
    p.add_argument("--eval-problems", default=None, help="eval problems: drop rows whose question appears there")
    p.add_argument("--kg", default=None, help="KG domain or .json for kg_path (default: each row's domain)")
    p.add_argument("--registers-dir", default=None)
    for f in ("id", "question", "gold", "text", "register"):
        p.add_argument(f"--{f}-field", default=None, help=f"input field holding the {f}")
    p.add_argument("--min-chars", type=int, default=1)
    p.add_argument("--max-chars", type=int, default=20000)
    p.add_argument("--format", default="jsonl", choices=["jsonl", "parquet"], help="parquet also writes kept.parquet")
    p.add_argument("--judge-base-url", default="http://127.0.0.1:8080/v1")
    p.add_argument("--judge-model", default="smollm2")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.set_defaults(fn=cmd_curate)

    p = sub.add_parser("stats", help="per-register counts, drops by reason and token totals")
    p.add_argument("path", help="a traces/kept JSONL, or a curate output folder")
    p.add_argument("--tokenizer", default="smollm2-135m", help="student preset, path, or 'whitespace'")
    p.set_defaults(fn=cmd_stats)

    p = sub.add_parser("registers", help="list registers and their templates")
    p.add_argument("--registers-dir", default=None)
    p.set_defaults(fn=cmd_registers)

    from tracestyle.cli_distill import add_distill_commands
    add_distill_commands(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    import warnings

    # library deprecation chatter (transformers, torch) is not actionable for our users
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args) or 0
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
