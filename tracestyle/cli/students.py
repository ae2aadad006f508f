"""Subcommands of the student side: train, rsft, eval."""

from __future__ import annotations

import argparse
import json

from tracestyle.cli.common import add_kg_arg
from tracestyle.distill.config import EVAL_BATCH, EvalConfig, RSFTConfig, config_from_preset
from tracestyle.distill.evaluate import run_eval
from tracestyle.distill.rsft import run_rsft
from tracestyle.distill.train import run_train
from tracestyle.progress import stage_progress
from tracestyle.reports.console import print_table
from tracestyle.rl.grpo import RLConfig, run_rl


def _train_overrides(args) -> dict:
    return {"max_steps": args.steps, "epochs": args.epochs, "lr": args.lr, "seed": args.seed,
            "batch_size": args.batch_size, "max_length": args.max_length,
            "grad_accum": args.grad_accum, "micro_batch_tokens": args.micro_batch_tokens, "backend": args.backend,
            "device": args.device, "lora": False if args.full else None, "save_every": args.save_every,
            "eval_every": args.eval_every, "prompt_format": args.prompt_format,
            "curriculum": True if args.curriculum else None, "dtype": args.precision, "lora_r": args.lora_r,
            "lora_alpha": args.lora_alpha}


def cmd_train(args) -> int:
    cfg = config_from_preset(args.student, **_train_overrides(args))
    res = run_train(args.data, cfg, args.out, allow_eval_leak=args.allow_eval_leak, init_adapter=args.init_adapter,
                    progress=stage_progress(f"train {args.student}", args.quiet), eval_data=args.eval_data)
    if res.get("skipped"):
        print(f"{args.out}: complete (manifest matches); nothing to do")
        return 0
    print_table("train", ["steps", "examples", "held-out", "seconds", "tokens/s", "device", "precision"],
                [[res.get("steps"), res.get("examples"), res.get("heldout"), res.get("seconds"),
                  res.get("tokens_per_s"), res.get("device"), res.get("precision", "-")]])
    return 0


def cmd_rsft(args) -> int:
    cfg = config_from_preset(args.student, **_train_overrides(args))
    rs = RSFTConfig(rounds=args.rounds, k=args.k, init_adapter=args.init_adapter, temperature=args.temperature,
                    top_p=args.top_p, allow_eval_leak=args.allow_eval_leak, max_new_tokens=args.max_new_tokens,
                    batch_size=args.gen_batch_size, kg=args.kg, match_difficulty=args.match_difficulty,
                    pool_n=args.pool_n, sampler=args.sampler)
    res = run_rsft(args.problems, cfg, args.out, rs, progress=stage_progress("rsft sampling", args.quiet))
    print(json.dumps(res, indent=2))
    return 0


def cmd_rl(args) -> int:
    cfg = config_from_preset(args.student, **_train_overrides(args))
    rl = RLConfig(reward=args.reward, steps=args.steps or RLConfig.steps, num_generations=args.num_generations,
                  prompts_per_step=args.prompts_per_step, max_new_tokens=args.max_new_tokens,
                  temperature=args.temperature, top_p=args.top_p, lr=args.lr or RLConfig.lr, beta=args.beta,
                  init_adapter=args.init_adapter, register=args.register, registers_dir=args.registers_dir,
                  solvable_k=args.solvable_k, threads=args.threads, save_every=args.save_every or RLConfig.save_every,
                  kg=args.kg, allow_eval_leak=args.allow_eval_leak, rollouts=args.rollouts,
                  vllm_server=args.vllm_server)
    res = run_rl(args.problems, cfg, args.out, rl, progress=stage_progress(f"rl {args.student}", args.quiet))
    if res.get("skipped"):
        print(f"{args.out}: complete (manifest matches); nothing to do")
        return 0
    print_table("rl (GRPO)", ["steps", "problems", "reward first", "reward last", "zero-spread groups", "seconds",
                              "threads", "precision", "rollouts"],
                [[res["steps"], res["problems"], res["reward_first"], res["reward_last"], res["zero_spread_share"],
                  res["seconds"], res["threads"], res["precision"], res["rollouts"]]])
    return 0


def cmd_eval(args) -> int:
    ev = EvalConfig(adapter=args.adapter, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                    temperature=args.temperature, device=args.device, backend=args.backend, limit=args.limit,
                    fmt=args.prompt_format, kg=args.kg, precision=args.precision)
    res = run_eval(args.student, args.problems, args.out, ev, progress=stage_progress(f"eval {args.student}", args.quiet))
    print_table("eval", ["student", "adapter", "n", "accuracy", "tokens/s", "engine", "precision"],
                [[res["student"], res.get("adapter") or "-", res["n"], f"{res['accuracy']:.3f}",
                  res.get("tokens_per_s"), res.get("backend"), res.get("precision", "-")]])
    return 0


def add_precision_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", default=None, choices=["auto", "bfloat16", "float32", "bf16", "fp32"],
                   help="auto (default): bfloat16 where the device computes it natively (a GPU; a CPU with AMX or "
                        "AVX512_BF16), else float32; float32 reproduces transformers' float32 outputs exactly")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--student", default="smollm2-135m")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--grad-accum", type=int, default=None, help="optimizer batch = batch size x grad accum")
    p.add_argument("--micro-batch-tokens", type=int, default=None,
                   help="hf backend: run each batch as micro-batches of at most N padded tokens (same gradient, "
                        "less memory); default 512 on CPU, whole batch on GPU; 0 = whole batch")
    p.add_argument("--backend", default=None, choices=["hf", "unsloth", "mlx"])
    p.add_argument("--device", default=None, help="auto, cpu, cuda, mps")
    p.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    p.add_argument("--lora-r", type=int, default=None, help="LoRA rank (default: the preset's)")
    p.add_argument("--lora-alpha", type=int, default=None, help="LoRA alpha (default: the preset's)")
    add_precision_arg(p)
    p.add_argument("--save-every", type=int, default=None, help="checkpoint every N steps (resume point)")
    p.add_argument("--eval-every", type=int, default=None, help="held-out loss every N steps")
    p.add_argument("--prompt-format", default=None, choices=["chat", "plain"],
                   help="the student's prompt: its chat template, or 'Question: … Answer:' (default: the preset's)")
    p.add_argument("--curriculum", action="store_true",
                   help="hf backend: train in the data file's order (sort it easy first) instead of shuffled batches")
    p.add_argument("--init-adapter", default=None)
    p.add_argument("--allow-eval-leak", action="store_true", help="permit eval-split data (logged everywhere)")


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="SFT a student on curated traces")
    p.add_argument("--data", required=True)
    p.add_argument("--eval-data", default=None, help="held-out traces for eval loss (default: 5%% of --data)")
    _add_train_args(p)
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("rsft", help="rejection-sampling fine-tuning on a train problem pool")
    p.add_argument("--problems", required=True)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--max-new-tokens", type=int, default=192)
    p.add_argument("--gen-batch-size", type=int, default=8)
    p.add_argument("--match-difficulty", metavar="EVAL_PROBLEMS",
                   help="draw the pool to follow these (eval) problems' difficulty distribution; never samples them")
    p.add_argument("--pool-n", type=int, help="at most this many pool problems (with --match-difficulty: drawn to "
                   "its difficulty; without: the first ones in the file)")
    p.add_argument("--sampler", default="hf", choices=["hf", "vllm"],
                   help="who samples the k completions: transformers, or vLLM (one engine start per round)")
    add_kg_arg(p)
    _add_train_args(p)
    p.set_defaults(fn=cmd_rsft)

    p = sub.add_parser("rl", help="GRPO (TRL) on train-split problems, rewarded by the task's verifiers")
    p.add_argument("--problems", required=True, help="train-split problems (JSONL with id, question, gold)")
    p.add_argument("--reward", default="answer",
                   help="reward functions with optional weights: answer, kg_path, steps, format, length, repetition "
                        "or a dotted import path, e.g. answer,kg_path:0.5")
    p.add_argument("--num-generations", type=int, default=8, help="completions per problem (the GRPO group)")
    p.add_argument("--prompts-per-step", type=int, default=1, help="problems per optimizer step")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--beta", type=float, default=0.0, help="KL coefficient against the starting model (0: none)")
    p.add_argument("--register", default=None, help="the register whose compliance the format reward checks")
    p.add_argument("--registers-dir", default=None, help="a folder of your own register folders")
    p.add_argument("--solvable-k", type=int, default=0,
                   help="keep only problems the starting model solves in some but not all of K samples (0: off)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default on a CPU: the faster of 1 and every core, measured once per machine "
                        "and cached)")
    p.add_argument("--rollouts", default="auto", choices=["auto", "transformers", "vllm"],
                   help="who writes the completions: vLLM through TRL (colocated on the GPU, or --vllm-server) or "
                        "transformers; auto: vLLM where it is installed beside a GPU")
    p.add_argument("--vllm-server", default=None, help="a `trl vllm-serve` server's URL for the rollouts")
    add_kg_arg(p)
    _add_train_args(p)
    p.set_defaults(fn=cmd_rl)

    p = sub.add_parser("eval", help="evaluate a student (optionally with trained weights) on problems")
    p.add_argument("--student", default="smollm2-135m")
    p.add_argument("--adapter", default=None, help="a LoRA adapter folder, or a fully fine-tuned model (train --full)")
    p.add_argument("--problems", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--batch-size", type=int, default=EVAL_BATCH, help=f"rows decoded together (default {EVAL_BATCH})")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--backend", default="auto", choices=["auto", "hf", "ct2", "vllm", "mlx"],
                   help="auto: on a CPU the engine measured fastest here for the precision (transformers or "
                        "CTranslate2: the same greedy rows), else transformers")
    add_precision_arg(p)
    p.add_argument("--prompt-format", default=None, choices=["chat", "plain"],
                   help="default: the format the weights were trained with, else the preset's")
    add_kg_arg(p)
    p.set_defaults(fn=cmd_eval)
