"""Subcommands of the data side: problems, generate, curate, stats, registers."""

from __future__ import annotations

import json
from pathlib import Path

from tracestyle.cli.common import add_kg_arg, add_task_args, csv_list, load_task_problems
from tracestyle.curate.cost import load_prices
from tracestyle.curate.curate import CurateConfig, curate
from tracestyle.curate.export import export_dataset, push_to_hub
from tracestyle.curate.generate import Teacher, generate
from tracestyle.curate.stats import dataset_stats
from tracestyle.curate.teachers.judge import make_compliance_judge
from tracestyle.curate.teachers.openai_client import OpenAIConfig
from tracestyle.jsonl import write_jsonl
from tracestyle.prompts import load_registers
from tracestyle.reports.console import print_curate_summary, print_registers, print_stats
from tracestyle.tasks import TASKS


def cmd_problems(args) -> int:
    probs = load_task_problems(args)
    n = write_jsonl(args.out, probs)
    print(f"wrote {n} problems to {args.out}")
    return 0


def cmd_generate(args) -> int:
    registers = load_registers(csv_list(args.registers), args.registers_dir)
    problems = load_task_problems(args)
    ocfg = OpenAIConfig(base_url=args.base_url, model=args.model or "smollm2", api_key_env=args.api_key_env,
                        temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed, k=args.k,
                        concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm, timeout=args.timeout,
                        max_retries=args.max_retries, n_mode=args.n_mode)
    vopts = {k: v for k, v in (("max_model_len", args.max_model_len), ("tensor_parallel_size", args.tensor_parallel_size),
                                ("gpu_memory_utilization", args.gpu_memory_utilization)) if v is not None}
    teacher = Teacher(args.teacher, ocfg if args.teacher != "template" else None, vllm_model=args.model,
                      vllm_options=vopts or None, cache=args.cache, prices=load_prices(args.prices) if args.prices else None)
    res = generate(problems, registers, args.out, teacher, inputs=[args.problems] if args.problems else [],
                   quiet=args.quiet)
    if res["skipped"]:
        print(f"{args.out}: complete (manifest matches); nothing to do")
    else:
        print(f"wrote {res['rows']} traces to {Path(args.out) / 'traces.jsonl'} ({res['failed']} failed)")
        if "usage" in res:
            print("usage: " + json.dumps(res["usage"]))
    return 0


def cmd_curate(args) -> int:
    registers = load_registers(None, args.registers_dir)
    fields = {k: v for k, v in {"id": args.id_field, "question": args.question_field, "gold": args.gold_field,
                                "text": args.text_field, "register": args.register_field}.items() if v}
    filters = csv_list(args.filters)
    judge = None
    if "judge" in filters:
        judge = make_compliance_judge(registers, args.judge_base_url, args.judge_model,
                                      api_key_env=args.api_key_env)
    cfg = CurateConfig(task=args.task, filters=filters, registers=registers, fields=fields,
                       problems_path=args.problems, eval_path=args.eval_problems, kg=args.kg,
                       min_chars=args.min_chars, max_chars=args.max_chars, judge=judge,
                       parquet=args.format == "parquet", decontam_n=args.decontam_n,
                       decontam_gsm8k=args.decontam_gsm8k, thinking=args.thinking)
    res = curate(args.inp, args.out, cfg, quiet=args.quiet)
    if res.get("skipped"):
        print(f"{args.out}: complete (manifest matches); nothing to do")
        return 0
    print_curate_summary(res)
    return 0


def cmd_stats(args) -> int:
    st = dataset_stats(args.path, args.tokenizer, prices=load_prices(args.prices) if args.prices else None)
    if args.json:
        print(json.dumps(st, indent=2))
    else:
        print_stats(st)
    return 0


def cmd_export(args) -> int:
    res = export_dataset(args.src, args.out, tokenizer=args.tokenizer)
    print(f"exported {sum(res['configs'].values())} traces in {len(res['configs'])} config(s) to {res['out']}: "
          + ", ".join(f"{k} {v}" for k, v in res["configs"].items()))
    if args.push_to_hub:
        push_to_hub(args.out, args.push_to_hub, private=args.private)
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub}")
    return 0


def cmd_registers(args) -> int:
    print_registers(load_registers(None, args.registers_dir))
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("problems", help="write a problems file (gsm8k or generated KG questions)")
    add_task_args(p, problems_file=False)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_problems)

    p = sub.add_parser("generate", help="write traces: problems x registers x k samples")
    add_task_args(p)
    p.add_argument("--registers", default="normal,gold,titanium,diamond")
    p.add_argument("--registers-dir", default=None, help="a folder of your own register folders")
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
    p.add_argument("--max-model-len", type=int, default=None, help="vllm teacher: the engine's context length")
    p.add_argument("--tensor-parallel-size", type=int, default=None, help="vllm teacher: GPUs to shard the model over")
    p.add_argument("--gpu-memory-utilization", type=float, default=None,
                   help="vllm teacher: share of GPU memory vLLM may take (its default 0.9)")
    p.add_argument("--cache", default=None, help="response cache JSONL (default OUT/cache/responses.jsonl)")
    p.add_argument("--prices", default=None,
                   help="YAML price table, model: {input: $/M tokens, output: $/M tokens}: estimated cost per register")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_generate)

    p = sub.add_parser("curate", help="filter traces: kept.jsonl and dropped.jsonl with reasons")
    p.add_argument("--in", dest="inp", required=True)
    p.add_argument("--task", required=True, choices=TASKS.names())
    p.add_argument("--filters", default="length,correct,kg_path,compliance,dedup")
    p.add_argument("--out", required=True)
    p.add_argument("--problems", default=None, help="problems JSONL to join by id (for traces made elsewhere)")
    p.add_argument("--eval-problems", default=None, help="eval problems: drop rows whose question appears there")
    p.add_argument("--decontam-n", type=int, default=13,
                   help="decontam filter: word n-gram size, 8-13 (overlap with --eval-problems and GSM8K test)")
    p.add_argument("--decontam-gsm8k", default=None,
                   help="decontam filter: the GSM8K folder whose test split is checked (default: found on disk)")
    add_kg_arg(p)
    p.add_argument("--registers-dir", default=None, help="a folder of your own register folders")
    for f in ("id", "question", "gold", "text", "register"):
        p.add_argument(f"--{f}-field", default=None, help=f"input field holding the {f}")
    p.add_argument("--min-chars", type=int, default=1)
    p.add_argument("--max-chars", type=int, default=20000)
    p.add_argument("--format", default="jsonl", choices=["jsonl", "parquet"], help="parquet also writes kept.parquet")
    p.add_argument("--thinking", default="keep", choices=["keep", "drop"],
                   help="a reasoning teacher's <think>…</think> block: filters always judge the answer after it; "
                        "drop removes it from kept rows so the student trains on the register-styled answer alone")
    p.add_argument("--judge-base-url", default="http://127.0.0.1:8080/v1")
    p.add_argument("--judge-model", default="smollm2")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.set_defaults(fn=cmd_curate)

    p = sub.add_parser("export", help="curated traces as a dataset: Parquet + datasets folders per register, a card")
    p.add_argument("src", help="a curate output folder or a grid run")
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer", default="smollm2-135m", help="token totals in the card under this tokenizer")
    p.add_argument("--push-to-hub", metavar="REPO", default=None, help="also upload to this Hub dataset repo (online)")
    p.add_argument("--private", action="store_true")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("stats", help="per-register counts, drops by reason and token totals")
    p.add_argument("path", help="a traces/kept JSONL, or a curate output folder")
    p.add_argument("--tokenizer", default="smollm2-135m", help="student preset, path, or 'whitespace'")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.add_argument("--prices", default=None, help="YAML price table (see generate --prices): teacher cost per register")
    p.set_defaults(fn=cmd_stats)

    p = sub.add_parser("registers", help="list registers and their templates")
    p.add_argument("--registers-dir", default=None)
    p.set_defaults(fn=cmd_registers)
