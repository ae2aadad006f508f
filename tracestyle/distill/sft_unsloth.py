"""unsloth backend (CUDA only): the shared TrainConfig mapped onto FastLanguageModel + TRL's SFTTrainer."""

from __future__ import annotations

from pathlib import Path

from tracestyle.distill.config import TrainConfig
from tracestyle.distill.examples import build_prompt, completion_text
from tracestyle.distill.models import load_preset, resolve_model_path
from tracestyle.errors import InputError, MissingExtraError
from tracestyle.jsonl import write_jsonl


def unsloth_args(cfg: TrainConfig, model_path: str, out_dir: str, n_rows: int) -> dict:
    """Pure translation, tested without a GPU by building the installed TRL's real SFTConfig from it. The same
    schedule as the hf backend: its step count (TrainConfig.total_steps) and its warm-up in steps (transformers 5
    has no warmup_ratio), linear decay; the precision run_train resolved (bf16 only where the device computes it natively)."""
    total = cfg.total_steps(n_rows)
    return {
        "model": {"model_name": model_path, "max_seq_length": cfg.max_length, "load_in_4bit": False,
                  "dtype": None},
        "peft": {"r": cfg.lora_r, "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout,
                 "target_modules": cfg.lora_targets, "random_state": cfg.seed, "use_gradient_checkpointing": "unsloth"},
        "sft": {"output_dir": out_dir, "per_device_train_batch_size": cfg.batch_size,
                "gradient_accumulation_steps": cfg.grad_accum, "learning_rate": cfg.lr,
                "max_steps": total, "warmup_steps": max(1, int(cfg.warmup_ratio * total)),
                "lr_scheduler_type": "linear", "seed": cfg.seed, "logging_steps": 1, "save_steps": cfg.save_every,
                "eval_steps": cfg.eval_every, "max_length": cfg.max_length, "completion_only_loss": True,
                "report_to": "none", "bf16": cfg.dtype == "bfloat16"},
    }


def sft_rows(rows: list[dict], tok, fmt: str) -> list[dict]:
    """The hf backend's texts: the student's prompt and the completion with its end token."""
    return [{"prompt": build_prompt(tok, r["question"], fmt), "completion": completion_text(tok, r["text"], fmt)}
            for r in rows]


def train_unsloth(rows: list[dict], cfg: TrainConfig, out_dir: str | Path) -> dict:
    try:
        import torch
        if not torch.cuda.is_available():
            raise InputError("the unsloth backend needs a CUDA GPU; use --backend hf on this machine", field="backend")
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer
        from unsloth import FastLanguageModel  # first: unsloth patches trl and transformers when imported
    except ImportError:
        raise MissingExtraError("unsloth", "unsloth") from None

    a = unsloth_args(cfg, resolve_model_path(load_preset(cfg.student).model), str(out_dir), len(rows))
    model, tok = FastLanguageModel.from_pretrained(**a["model"])
    model = FastLanguageModel.get_peft_model(model, **a["peft"])
    ds = Dataset.from_list(sft_rows(rows, tok, cfg.prompt_format))
    trainer = SFTTrainer(model=model, processing_class=tok, train_dataset=ds, args=SFTConfig(**a["sft"]))
    result = trainer.train(resume_from_checkpoint=any(Path(out_dir).glob("checkpoint-*")) or None)
    model.save_pretrained(out_dir)
    _write_metrics(trainer.state.log_history, Path(out_dir) / "metrics.jsonl")
    return {"steps": trainer.state.global_step, "train_loss": result.training_loss}


def _write_metrics(history: list[dict], path: Path) -> None:

    write_jsonl(path, [{"step": h.get("step"), **({"loss": h["loss"]} if "loss" in h else {}),
                        **({"eval_loss": h["eval_loss"]} if "eval_loss" in h else {})}
                       for h in history if "loss" in h or "eval_loss" in h])
