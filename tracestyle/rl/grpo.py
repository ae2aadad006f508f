"""GRPO through TRL's GRPOTrainer on a task's train-split problems, from the base model or an SFT adapter (LoRA or
full), rewarded by tracestyle's verifiers (rl/rewards.py). The student sees the prompt every other stage builds and
stops where evaluation stops it; metrics.jsonl gets one row per step (reward per function, the share of groups
whose completions all got one reward, KL, length, loss); checkpoints make a killed run resume where it stopped."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tracestyle.distill.config import TrainConfig
from tracestyle.distill.examples import _bos_text, build_prompt
from tracestyle.distill.generation import finish_row, stop_ids, weights_file
from tracestyle.distill.models import load_tokenizer
from tracestyle.distill.sft_hf import build_model, pick_device, trim_metrics
from tracestyle.errors import InputError, MissingExtraError
from tracestyle.jsonl import AppendLog, read_jsonl, strip_meta, write_json
from tracestyle.manifest import is_complete, write_manifest
from tracestyle.precision import resolve_precision, thread_budget
from tracestyle.prompts import load_registers
from tracestyle.rl.rewards import Completion, parse_rewards
from tracestyle.rl.solvable import solvable_only
from tracestyle.rl.thread_choice import choose_threads
from tracestyle.tasks import point_at, task_of


@dataclass
class RLConfig:
    """GRPO's settings beside the TrainConfig (student, LoRA, precision, seed, prompt format).
    `reward`: "answer,kg_path:0.5"; a step takes `prompts_per_step` problems x `num_generations` completions;
    `beta`: the KL coefficient (0: no reference model, TRL's default); `register`: whose compliance the `format`
    reward checks; `solvable_k`: keep only problems the starting model solves in some but not all of k samples
    (0: off); `threads`: torch threads (None: on a CPU the faster of 1 and every core, by a probe cached per machine:
    rl/thread_choice.py)."""
    reward: str = "answer"
    steps: int = 20
    num_generations: int = 8
    prompts_per_step: int = 1
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    lr: float = 5e-5
    beta: float = 0.0
    init_adapter: str | None = None
    register: str | None = None
    registers_dir: str | None = None
    solvable_k: int = 0
    threads: int | None = None
    save_every: int = 10
    kg: str | None = None
    allow_eval_leak: bool = False
    # who writes the rollouts: transformers' generate, or vLLM through TRL (colocated on the training GPU, or a
    # `trl vllm-serve` server at vllm_server); auto: vLLM where it is installed beside a GPU, else transformers
    rollouts: str = "auto"
    vllm_server: str | None = None
    vllm_memory: float = 0.3            # colocated vLLM's share of GPU memory


# TRL's log keys -> metrics.jsonl's (the per-reward keys "rewards/<name>/mean|std" are kept as they are)
_KEYS = {"loss": "loss", "reward": "reward", "reward_std": "reward_std", "frac_reward_zero_std": "zero_spread_groups",
         "kl": "kl", "completions/mean_length": "completion_tokens", "completions/clipped_ratio": "truncated_share",
         "learning_rate": "lr", "entropy": "entropy", "grad_norm": "grad_norm"}


def _problems(path: str | Path, rl: RLConfig) -> list[dict]:
    problems = read_jsonl(path, required=("id", "question", "gold"))
    if rl.kg:
        problems = point_at(problems, rl.kg)
    for p in problems:
        task_of(p).prepare([p], where=str(path), need_trace_checks=True)
    evals = [p for p in problems if p.get("split") == "eval"]
    if evals and not rl.allow_eval_leak:
        raise InputError(f"the RL pool holds {len(evals)} eval-split problems; training on them leaks the evaluation "
                         "(pass --allow-eval-leak to do it anyway)", str(path), evals[0].get("__line__"), "split")
    return [strip_meta(p) for p in problems]


def _register_rules(rl: RLConfig) -> dict | None:
    if not rl.register:
        return None
    return load_registers([rl.register], rl.registers_dir)[rl.register].compliance


def check_rewards(rewards: list, problems: list[dict], rules: dict | None) -> None:
    """Refuse a reward that applies to none of the problems (kg_path on math, format without a register): it would
    silently teach nothing."""
    for name, _, fn in rewards:
        if not any(_safe(fn, p, Completion("", register_rules=rules)) is not None for p in problems[:64]):
            why = " (format needs --register)" if name == "format" else ""
            raise InputError(f"reward '{name}' applies to none of these problems{why}", field="reward")


def _safe(fn, p, c):
    try:
        return fn(p, c)
    except Exception:   # a user's reward may not expect an empty completion; it applies, then
        return 0.0


def trl_prompt(tok, question: str, fmt: str) -> str:
    """The prompt text for TRL, which tokenizes plain-text prompts with the tokenizer's special tokens: the BOS
    that `build_prompt` writes out is dropped when the tokenizer adds it itself, so the ids match evaluation's."""
    text = build_prompt(tok, question, fmt)
    bos = _bos_text(tok)
    return text[len(bos):] if bos and text.startswith(bos) else text


def trl_reward(name: str, fn, *, tok, fmt: str, stops: list[int], max_new: int, rules: dict | None):
    """A tracestyle reward as TRL calls it: batches of completions, with the dataset's `problem` column."""
    def reward(prompts, completions, completion_ids=None, problem=None, **_):
        out = []
        for ids, pj in zip(completion_ids, problem):
            ended = bool(ids) and ids[-1] in stops
            text, cut = finish_row(tok, ids[:-1] if ended else list(ids), stopped=ended, fmt=fmt,
                                   at_limit=len(ids) >= max_new)
            v = fn(json.loads(pj), Completion(text, cut, len(ids), rules))
            out.append(None if v is None else float(v))
        return out
    reward.__name__ = name
    return reward


def _latest(ck_dir: Path) -> Path | None:
    cks = [p for p in ck_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(cks, key=lambda p: int(p.name.split("-")[1])) if cks else None


def _metrics_callback(path: Path, total: int, progress, t0: float):
    from transformers import TrainerCallback

    class Metrics(TrainerCallback):
        def __init__(self):
            self.log = AppendLog(path)

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or "reward" not in logs:
                return
            row = {"step": state.global_step}
            for k, v in logs.items():
                if k in _KEYS:
                    row[_KEYS[k]] = round(float(v), 6)
                elif k.startswith("rewards/"):
                    row[k] = round(float(v), 6)
            row["elapsed"] = round(time.time() - t0, 2)
            self.log.append(row)
            if progress:
                progress(state.global_step, total, row)

        def on_train_end(self, args, state, control, **kw):
            self.log.close()

    return Metrics()


def _vllm_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def rollout_mode(rl: RLConfig, device: str) -> str:
    """Who writes the rollouts: "transformers", "vllm (server)" or "vllm (colocate)"; a request this machine cannot
    serve is an error before anything loads."""
    mode = rl.rollouts
    if mode not in ("auto", "transformers", "vllm"):
        raise InputError(f"rollouts must be auto, transformers or vllm, got {mode!r}", field="rollouts")
    if mode == "auto":
        mode = "vllm" if rl.vllm_server or (device == "cuda" and _vllm_importable()) else "transformers"
    if mode == "transformers":
        return mode
    if rl.vllm_server:
        return "vllm (server)"
    if device != "cuda":
        raise InputError("vLLM rollouts through TRL run colocated on the training GPU, or on a `trl vllm-serve` "
                         "server (--vllm-server URL); this machine trains on the CPU: use --rollouts transformers",
                         field="rollouts")
    if not _vllm_importable():
        raise MissingExtraError("vllm", "vllm")
    return "vllm (colocate)"


def rollout_args(rl: RLConfig, device: str, stops: list[int]) -> tuple[str, dict]:
    """(who writes the rollouts, GRPOConfig arguments for it). vLLM stops at evaluation's stop tokens like generate
    does; completions are ended and scored by the same rules either way (trl_reward)."""
    mode = rollout_mode(rl, device)
    if mode == "transformers":
        return mode, {}
    vllm = {"use_vllm": True, "generation_kwargs": {"stop_token_ids": list(stops)}}
    if mode == "vllm (server)":
        return mode, {**vllm, "vllm_mode": "server", "vllm_server_base_url": rl.vllm_server}
    return mode, {**vllm, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": rl.vllm_memory}


# settings that choose where the rollouts run, not what is trained: in the manifest's key only when vLLM writes them,
# so a run with transformers' rollouts keeps the key it had before vLLM rollouts existed (and is not redone)
_ROLLOUT_FIELDS = ("rollouts", "vllm_server", "vllm_memory")


def rl_conf(cfg: TrainConfig, rl: RLConfig, rollouts: str = "transformers") -> dict:
    """The manifest's key: the training settings and the RL ones, with who writes the rollouts (resolved) where
    that is not transformers."""
    conf = {**cfg.to_dict(), **{f"rl_{k}": v for k, v in asdict(rl).items() if k not in _ROLLOUT_FIELDS}}
    if rollouts != "transformers":
        conf.update(rl_rollouts=rollouts, rl_vllm_server=rl.vllm_server, rl_vllm_memory=rl.vllm_memory)
    return conf


def run_rl(problems_path: str | Path, cfg: TrainConfig, out_dir: str | Path, rl: RLConfig | None = None, *,
           progress=None) -> dict:
    """GRPO on train-split problems; the output folder is a LoRA adapter (or a full model with `cfg.lora` off)
    that `tracestyle eval` and the grid evaluate like any trained student."""
    import torch

    rl = rl or RLConfig()
    t0 = time.time()
    out = Path(out_dir)
    device = pick_device(cfg.device)
    cfg = replace(cfg, dtype=resolve_precision(cfg.dtype, device))
    rewards = parse_rewards(rl.reward)
    problems = _problems(problems_path, rl)
    rules = _register_rules(rl)
    check_rewards(rewards, problems, rules)
    inputs = [problems_path] + ([weights_file(rl.init_adapter)] if rl.init_adapter else [])
    conf = rl_conf(cfg, rl, rollout_mode(rl, device))
    if is_complete(out, conf, inputs):
        return {"skipped": True}
    try:
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer
    except ImportError:
        raise MissingExtraError("trl", "trl") from None
    out.mkdir(parents=True, exist_ok=True)
    # the solvable filter samples with every core (or the requested count); the step's count is chosen below
    torch.set_num_threads(rl.threads or thread_budget())
    tok = load_tokenizer(cfg.student)
    fmt = cfg.prompt_format
    filt = None
    if rl.solvable_k:
        problems, filt = solvable_only(problems, cfg, rl, out / "solvable.json", device=device)
        if not problems:
            raise InputError(f"no problem is solved in some but not all of {rl.solvable_k} samples by the starting "
                             "model: nothing for GRPO to compare (try an SFT warm start or easier problems)",
                             str(problems_path))
    ds = Dataset.from_list([{"prompt": trl_prompt(tok, p["question"], fmt), "problem": json.dumps(p)}
                            for p in problems])
    model = build_model(cfg, device, rl.init_adapter)
    model.config.use_cache = True
    stops = stop_ids(tok, fmt)
    model.generation_config.eos_token_id = stops
    model.generation_config.pad_token_id = tok.pad_token_id
    threads, thread_probe = (rl.threads or torch.get_num_threads(), {"chosen_by": "not a CPU"}) if device != "cpu" \
        else choose_threads(model, tok, ds[0]["prompt"], cfg.student, cfg.dtype, rl.num_generations, rl.threads)
    torch.set_num_threads(threads)
    funcs = [trl_reward(n, fn, tok=tok, fmt=fmt, stops=stops, max_new=rl.max_new_tokens, rules=rules)
             for n, _, fn in rewards]
    bf16 = cfg.dtype == "bfloat16"
    rollouts, vllm_args = rollout_args(rl, device, stops)
    args = GRPOConfig(
        output_dir=str(out / "checkpoints"), max_steps=rl.steps, learning_rate=rl.lr, beta=rl.beta,
        per_device_train_batch_size=rl.prompts_per_step * rl.num_generations, gradient_accumulation_steps=1,
        num_generations=rl.num_generations, max_completion_length=rl.max_new_tokens, temperature=rl.temperature,
        top_p=rl.top_p, reward_weights=[w for _, w, _ in rewards], logging_steps=1, save_strategy="steps",
        save_steps=rl.save_every, save_total_limit=1, report_to=[], seed=cfg.seed, bf16=bf16, fp16=False,
        use_cpu=device == "cpu", gradient_checkpointing=False, disable_tqdm=True, remove_unused_columns=False,
        warmup_steps=max(0, int(cfg.warmup_ratio * rl.steps)), lr_scheduler_type="linear", max_grad_norm=1.0,
        dataloader_num_workers=0, log_completions=False, **vllm_args)
    ck = _latest(out / "checkpoints")
    metrics = out / "metrics.jsonl"
    trim_metrics(metrics, int(ck.name.split("-")[1]) if ck else 0)
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=ds, processing_class=tok,
                          callbacks=[_metrics_callback(metrics, rl.steps, progress, t0)])
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)   # metrics.jsonl and the progress bar say it, once
    trainer.train(resume_from_checkpoint=str(ck) if ck else None)
    elapsed = time.time() - t0
    trainer.model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out / "tokenizer")
    write_json(out / "train_config.json", {**cfg.to_dict(), "recipe": "grpo", "reward": rl.reward})
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    rows = [json.loads(ln) for ln in metrics.read_text().splitlines() if ln.strip()] if metrics.exists() else []
    zero = [r["zero_spread_groups"] for r in rows if "zero_spread_groups" in r]
    res = {"steps": rl.steps, "problems": len(problems), "seconds": round(elapsed, 2), "device": device,
           "precision": cfg.dtype, "threads": threads, "thread_probe": thread_probe, "rollouts": rollouts,
           "rewards": [[n, w] for n, w, _ in rewards],
           "reward_first": rows[0].get("reward") if rows else None, "reward_last": rows[-1].get("reward") if rows else None,
           "zero_spread_share": round(sum(zero) / len(zero), 4) if zero else None, "solvable_filter": filt}
    write_manifest(out, "rl", conf, inputs, res, started=t0, extra={"eval_leak": rl.allow_eval_leak})
    return {"skipped": False, **res}
