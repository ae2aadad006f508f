"""mlx-lm backend (Apple silicon; also runs slowly on Linux CPU with mlx[cpu]): the shared TrainConfig mapped
onto `mlx_lm lora` with its chat JSONL format and prompt masking."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tracestyle.distill.config import TrainConfig
from tracestyle.distill.examples import chat_messages, plain_prompt
from tracestyle.distill.models import load_preset, resolve_model_path
from tracestyle.errors import InputError, MissingExtraError
from tracestyle.jsonl import write_jsonl


def mlx_dataset(rows: list[dict], fmt: str = "chat") -> list[dict]:
    """The shared student prompt in mlx-lm's formats: chat messages (rendered by the tokenizer's template, as
    build_prompt does) or prompt/completion pairs for the plain format."""
    if fmt == "plain":
        return [{"prompt": plain_prompt(r["question"]), "completion": " " + r["text"].strip()} for r in rows]
    return [{"messages": chat_messages(r["question"]) + [{"role": "assistant", "content": r["text"]}]} for r in rows]


def mlx_config(cfg: TrainConfig, model_path: str, data_dir: str, out_dir: str, n_rows: int) -> dict:
    iters = cfg.max_steps or max(1, cfg.epochs * -(-n_rows // cfg.batch_size))
    return {"model": model_path, "train": True, "data": data_dir, "adapter_path": out_dir, "fine_tune_type": "lora",
            "batch_size": cfg.batch_size, "iters": iters, "learning_rate": cfg.lr, "max_seq_length": cfg.max_length,
            "seed": cfg.seed, "mask_prompt": True, "grad_accumulation_steps": cfg.grad_accum,
            "steps_per_report": 1, "steps_per_eval": cfg.eval_every, "save_every": cfg.save_every,
            "lora_parameters": {"rank": cfg.lora_r, "scale": cfg.lora_alpha / cfg.lora_r,
                                "dropout": cfg.lora_dropout, "keys": [f"self_attn.{t}" if t.endswith("_proj") and
                                                                      t[0] in "qkvo" else f"mlp.{t}"
                                                                      for t in cfg.lora_targets]}}


_LOSS = re.compile(r"Iter (\d+): (Train|Val) loss ([\d.]+)")


def train_mlx(rows: list[dict], cfg: TrainConfig, out_dir: str | Path) -> dict:
    import yaml

    try:
        import mlx_lm  # noqa: F401  (checked here; the trainer runs as `python -m mlx_lm lora`)
    except ImportError:
        raise MissingExtraError("mlx-lm", "mlx") from None

    out = Path(out_dir)
    data = out / "mlx_data"
    n_valid = max(1, len(rows) // 20)
    write_jsonl(data / "train.jsonl", mlx_dataset(rows[n_valid:], cfg.prompt_format))
    write_jsonl(data / "valid.jsonl", mlx_dataset(rows[:n_valid], cfg.prompt_format))
    conf = mlx_config(cfg, resolve_model_path(load_preset(cfg.student).model), str(data), str(out), len(rows))
    (out / "mlx_config.yaml").write_text(yaml.safe_dump(conf))
    proc = subprocess.run([sys.executable, "-m", "mlx_lm", "lora", "-c", str(out / "mlx_config.yaml")],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise InputError(f"mlx_lm lora failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else ''}")
    metrics = {}
    for it, kind, loss in _LOSS.findall(proc.stdout + proc.stderr):
        metrics.setdefault(int(it), {"step": int(it)})["loss" if kind == "Train" else "eval_loss"] = float(loss)
    write_jsonl(out / "metrics.jsonl", [metrics[k] for k in sorted(metrics)])
    return {"steps": conf["iters"], "log": json.dumps(proc.stdout[-500:])}
