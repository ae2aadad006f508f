"""mlx-lm backend (Apple silicon; also runs slowly on Linux CPU with mlx[cpu]): the shared TrainConfig mapped
onto mlx-lm's LoRA trainer (LoRA on every layer, the hf backend's warm-up and linear decay, prompt masking), fed
the same prompt and completion texts as the hf backend (distill/mlx_lora_main.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from tracestyle.distill.config import TrainConfig
from tracestyle.distill.examples import build_prompt, completion_text
from tracestyle.distill.models import load_preset, load_tokenizer, resolve_model_path
from tracestyle.errors import InputError, MissingExtraError
from tracestyle.jsonl import write_jsonl


def mlx_dataset(rows: list[dict], tok, fmt: str = "chat") -> list[dict]:
    """The hf backend's texts for each row: the student's prompt (build_prompt) and the completion with its end
    token (completion_text), as prompt/completion pairs tokenized as they stand (mlx_lora_main.py)."""
    return [{"prompt": build_prompt(tok, r["question"], fmt), "completion": completion_text(tok, r["text"], fmt)}
            for r in rows]


def n_valid(n_rows: int, batch_size: int) -> int:
    """Validation rows: a twentieth of the set, and never less than the one batch mlx-lm needs."""
    return max(batch_size, n_rows // 20)


def mlx_config(cfg: TrainConfig, model_path: str, data_dir: str, out_dir: str, n_rows: int, *,
               n_heldout: int | None = None) -> dict:
    """`n_rows`: the training rows; `n_heldout`: the validation file's rows (default: what train_mlx splits off
    `n_rows`). mlx-lm counts iterations in micro-batches and updates every `grad_accumulation_steps` of them, so
    the iterations are the hf backend's optimizer steps × accumulation."""
    ga = cfg.grad_accum
    iters = cfg.total_steps(n_rows) * ga
    return {"model": model_path, "train": True, "data": data_dir, "adapter_path": out_dir, "fine_tune_type": "lora",
            "batch_size": cfg.batch_size, "iters": iters, "learning_rate": cfg.lr, "max_seq_length": cfg.max_length,
            "seed": cfg.seed, "mask_prompt": True, "grad_accumulation_steps": cfg.grad_accum,
            "num_layers": -1,   # every layer, as peft's target modules do (mlx-lm's default is the last 16)
            "lr_schedule": lr_schedule(cfg, cfg.total_steps(n_rows)),
            "steps_per_report": 1, "steps_per_eval": cfg.eval_every * ga, "save_every": cfg.save_every * ga,
            # the whole (small) validation file, not mlx-lm's default of 25 batches
            "val_batches": -(-(n_heldout or n_valid(n_rows, cfg.batch_size)) // cfg.batch_size),
            "lora_parameters": {"rank": cfg.lora_r, "scale": cfg.lora_alpha / cfg.lora_r,
                                "dropout": cfg.lora_dropout, "keys": [f"self_attn.{t}" if t.endswith("_proj") and
                                                                      t[0] in "qkvo" else f"mlp.{t}"
                                                                      for t in cfg.lora_targets]}}


def lr_schedule(cfg: TrainConfig, total_steps: int) -> dict:
    """The hf backend's schedule in mlx-lm's terms (counted in optimizer updates): a linear warm-up over
    warmup_ratio of the steps from lr/warm, then a linear decay to 0 at the last step."""
    warm = max(1, int(cfg.warmup_ratio * total_steps))
    return {"name": "linear_schedule", "arguments": [cfg.lr, 0.0, max(1, total_steps - warm)], "warmup": warm,
            "warmup_init": cfg.lr / warm}


# mlx-lm's report lines: "Iter 5: Train loss 1.234, ..." (before 0.30) or a table row "5  1.234 ▼  2  0.3k" /
# "5  val 0.815  31.7s" (0.30 on, coloured)
_LOSS = re.compile(r"Iter (\d+): (Train|Val) loss ([\d.]+)")
_ROW = re.compile(r"^[ \t]*(\d+)[ \t]+(val[ \t]+)?([\d.]+)\b(?:[ \t]*[▼▲=]?[ \t]+\S+[ \t]+([\d.]+)(k|M)?)?", re.M)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_mlx_log(log: str) -> tuple[list[dict], float | None]:
    """Per-step train and validation loss from mlx-lm's output, and the tokens it trained on (when it says)."""
    log = _ANSI.sub("", log)
    metrics: dict[int, dict] = {}
    tokens = None
    for it, kind, loss in _LOSS.findall(log):
        metrics.setdefault(int(it), {"step": int(it)})["loss" if kind == "Train" else "eval_loss"] = float(loss)
    for it, val, loss, tok, unit in _ROW.findall(log):
        metrics.setdefault(int(it), {"step": int(it)})["eval_loss" if val else "loss"] = float(loss)
        if tok and not val:
            tokens = float(tok) * {"k": 1e3, "M": 1e6}.get(unit, 1)
    return [metrics[k] for k in sorted(metrics)], tokens


def per_optimizer_step(metrics: list[dict], grad_accum: int) -> list[dict]:
    """mlx-lm reports every micro-batch; metrics.jsonl counts optimizer steps on every backend: a step's loss is
    the mean of its micro-batches', its held-out loss the last one measured in it."""
    if grad_accum <= 1:
        return metrics
    steps: dict[int, dict] = {}
    for m in metrics:
        s = -(-m["step"] // grad_accum)
        row = steps.setdefault(s, {"step": s, "_losses": []})
        if "loss" in m:
            row["_losses"].append(m["loss"])
        if "eval_loss" in m:
            row["eval_loss"] = m["eval_loss"]
    out = []
    for s in sorted(steps):
        row = steps[s]
        losses = row.pop("_losses")
        if losses:
            row["loss"] = round(sum(losses) / len(losses), 6)
        out.append(row)
    return out


def train_mlx(rows: list[dict], cfg: TrainConfig, out_dir: str | Path) -> dict:
    import yaml

    try:
        import mlx_lm  # noqa: F401  (checked here; the trainer runs as `python -m mlx_lm lora`)
    except ImportError:
        raise MissingExtraError("mlx-lm", "mlx") from None

    out = Path(out_dir)
    data = out / "mlx_data"
    # mlx-lm needs at least a batch in each file; a set too small to spare one validates on its first batch
    nv = n_valid(len(rows), cfg.batch_size)
    train_rows, valid_rows = (rows[nv:], rows[:nv]) if len(rows) - nv >= cfg.batch_size \
        else (rows, rows[: cfg.batch_size])
    if len(train_rows) < cfg.batch_size:
        raise InputError(f"{len(rows)} training rows, fewer than one batch of {cfg.batch_size}", field="batch_size")
    tok = load_tokenizer(cfg.student)
    write_jsonl(data / "train.jsonl", mlx_dataset(train_rows, tok, cfg.prompt_format))
    write_jsonl(data / "valid.jsonl", mlx_dataset(valid_rows, tok, cfg.prompt_format))
    conf = mlx_config(cfg, resolve_model_path(load_preset(cfg.student).model), str(data), str(out),
                      len(train_rows), n_heldout=len(valid_rows))
    (out / "mlx_config.yaml").write_text(yaml.safe_dump(conf))
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "tracestyle.distill.mlx_lora_main", "-c", str(out / "mlx_config.yaml")],
                          capture_output=True, text=True)
    elapsed = time.time() - t0
    if proc.returncode != 0:
        raise InputError(f"mlx_lm lora failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else ''}")
    metrics, tokens = parse_mlx_log(proc.stdout + proc.stderr)
    if not any("loss" in m for m in metrics):
        raise InputError("mlx_lm lora finished but reported no training loss (an output format this version of "
                         "tracestyle does not read): " + _ANSI.sub("", proc.stdout)[-300:])
    write_jsonl(out / "metrics.jsonl", per_optimizer_step(metrics, cfg.grad_accum))
    import mlx.core as mx

    return {"steps": cfg.total_steps(len(train_rows)), "examples": len(train_rows), "heldout": len(valid_rows),
            "seconds": round(elapsed, 2), "tokens_per_s": round(tokens / elapsed, 1) if tokens else None,
            "device": f"mlx:{mx.default_device()}", "log": json.dumps(_ANSI.sub("", proc.stdout)[-500:])}
