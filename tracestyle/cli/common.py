"""Arguments and helpers several subcommands share."""

from __future__ import annotations

import argparse
import json

from tracestyle.errors import InputError
from tracestyle.jsonl import read_jsonl, strip_meta
from tracestyle.tasks import TASKS, get_task, point_at

KG_HELP = "KG tasks: a built-in KG (devops, world) or your KG .json; the same flag on every command"


def csv_list(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def hop_range(s: str) -> tuple[int, int]:
    try:
        lo, _, hi = s.partition("-")
        return int(lo), int(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"hop range '{s}' must look like 1-3") from None


def add_kg_arg(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--kg", default=default, help=KG_HELP)
    # the flag's earlier name on `problems`; kept so old command lines still work
    p.add_argument("--domain", dest="kg", help=argparse.SUPPRESS)


def add_task_args(p: argparse.ArgumentParser, problems_file: bool = True) -> None:
    p.add_argument("--task", default="gsm8k", choices=TASKS.names())
    p.add_argument("--split", default="train", help="gsm8k: train|test; kg: train|eval")
    p.add_argument("--n", type=int, default=None, help="number of problems (default: all for gsm8k, 100 for kg)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="GSM8K folder/file, or hf:<dataset id> (default ../shared/data/gsm8k)")
    add_kg_arg(p)
    p.add_argument("--train-hops", type=hop_range, default=(1, 3))
    p.add_argument("--eval-hops", type=hop_range, default=(4, 5))
    p.add_argument("--mc", action="store_true", help="KG: multiple choice (A-D)")
    p.add_argument("--closed-book", action="store_true", help="KG: no facts in the prompt")
    p.add_argument("--answer-sets", action="store_true",
                   help="KG: also ask questions whose chain fans out (any entity of the answer set is right)")
    p.add_argument("--rg-dataset", default=None,
                   help="reasoning_gym: the generator (family_relationships, shortest_path, gsm_symbolic, ...)")
    p.add_argument("--rg-config", type=json_mapping, default=None,
                   help="reasoning_gym: the generator's options as JSON, e.g. '{\"min_family_size\": 4}'")
    p.add_argument("--pw-dir", default=None,
                   help="phantomwiki: a PhantomWiki output folder (facts.pl, questions/) instead of generating one")
    p.add_argument("--pw-size", type=int, default=26, help="phantomwiki: people per family tree when generating")
    p.add_argument("--pw-depth", type=int, default=10, help="phantomwiki: question template depth (10: 1-4 hops)")
    if problems_file:
        p.add_argument("--problems", default=None, help="a problems JSONL instead of --task/--split")


def json_mapping(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def load_task_problems(args) -> list[dict]:
    """Problems from --problems (a file; --kg repoints its KG problems) or from --task/--split."""
    if getattr(args, "problems", None):
        rows = read_jsonl(args.problems, required=("id", "task", "question", "gold"))
        if args.kg:
            rows = point_at(rows, args.kg)
        for r in rows:
            get_task(r["task"]).prepare([r], where=args.problems)
        return [strip_meta(r) for r in rows]
    if args.n is not None and args.n < 1:
        raise InputError("n must be at least 1", field="n")
    options = {"data": args.data, "kg": args.kg or "devops", "train_hops": args.train_hops,
               "eval_hops": args.eval_hops, "mc": args.mc, "open_book": not args.closed_book,
               "answer_sets": args.answer_sets, "rg_dataset": args.rg_dataset, "rg_config": args.rg_config,
               "pw_dir": args.pw_dir, "pw_size": args.pw_size, "pw_depth": args.pw_depth}
    return get_task(args.task).load_problems(split=args.split, n=args.n, seed=args.seed, options=options)
