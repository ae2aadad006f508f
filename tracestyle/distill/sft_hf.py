"""SFT with transformers + peft: completion-only loss computed only where it counts, length-grouped batches,
gradient accumulation, atomic checkpoints with exact resume, metrics.jsonl with train and held-out eval loss."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

from tracestyle.diskspace import require_free
from tracestyle.distill.config import TrainConfig
from tracestyle.distill.examples import collate, encode_example, length_grouped_batches, ordered_batches
from tracestyle.distill.generation import trained_kind
from tracestyle.distill.memory import GIB, micro_budget_for
from tracestyle.distill.models import load_model, load_preset, load_tokenizer
from tracestyle.errors import InputError
from tracestyle.jsonl import AppendLog, atomic_write_text, write_json
from tracestyle.precision import resolve_precision, thread_budget


def pick_device(want: str) -> str:
    import torch

    if want != "auto":
        return want
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def completion_loss(model, ids, labels, mask):
    """Run the decoder, then the LM head only on positions whose next token is a completion token:
    the full-vocabulary logits for prompt and padding positions are never built."""
    import torch.nn.functional as F

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = base.model(input_ids=ids, attention_mask=mask).last_hidden_state
    target = labels[:, 1:]
    sel = target != -100
    h = hidden[:, :-1][sel]
    logits = head_logits(base, h)
    return F.cross_entropy(logits, target[sel], reduction="sum"), int(sel.sum())


def head_logits(base, h):
    """The model's own output head on selected hidden states, in float32: the LM head and what a family's forward
    does after it (read in transformers' modeling code): Gemma 2's final-logit soft-capping, Granite's
    logits_scaling, Cohere's logit_scale. tests/test_train_config.py checks each against the model's forward."""
    import torch

    logits = base.lm_head(h).float()
    cfg = base.config
    cap = getattr(cfg, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    scaling = getattr(cfg, "logits_scaling", None)
    if scaling:
        logits = logits / scaling
    scale = getattr(base, "logit_scale", None)
    if isinstance(scale, (int, float)):
        logits = logits * scale
    return logits


def micro_batches(examples: list[dict], idx: list[int], budget: int) -> list[list[int]]:
    """Split one optimizer batch into micro-batches of at most `budget` padded tokens (a longer example runs
    alone). Sorted by length, so padding shrinks too. budget 0: the whole batch at once."""
    if budget <= 0:
        return [idx]
    out: list[list[int]] = []
    cur: list[int] = []
    for i in sorted(idx, key=lambda i: len(examples[i]["input_ids"])):
        if cur and (len(cur) + 1) * len(examples[i]["input_ids"]) > budget:
            out.append(cur)
            cur = []
        cur.append(i)
    return out + [cur] if cur else out


def micro_budget(cfg: TrainConfig, device: str) -> int:
    # measured on 2 CPU cores (bench/sft_vs_trl.py): 512-token micro-batches instead of one 8 x 256 batch ran about
    # 1.3x faster at 0.4x the peak RSS; on a GPU, the largest micro-batch its free memory holds (gpu_plan)
    if cfg.micro_batch_tokens is not None:
        return cfg.micro_batch_tokens
    if device == "cpu":
        return 512
    return gpu_plan(cfg, device)[0]


def gpu_plan(cfg: TrainConfig, device: str) -> tuple[int, bool]:
    """(micro-batch tokens, gradient checkpointing) sized to the GPU's free memory from the model's shape
    (distill/memory.py): the whole batch when it fits, else fewer sequences, else checkpointing. (0, False): the
    whole batch, for devices whose memory cannot be read or presets without an architecture."""
    import torch

    arch = load_preset(cfg.student).architecture
    if not device.startswith("cuda") or not arch or not torch.cuda.is_available():
        return 0, False
    free = torch.cuda.mem_get_info()[0]
    fit = micro_budget_for(arch, free, lora=cfg.lora, r=cfg.lora_r, targets=cfg.lora_targets, precision=cfg.dtype,
                           max_length=cfg.max_length, batch_tokens=cfg.batch_size * cfg.max_length)
    if fit is None:
        raise InputError(f"{cfg.student} does not fit in this GPU's {free / GIB:.1f} GiB free even with gradient "
                         "checkpointing and one sequence per micro-batch (estimate); use LoRA, a shorter "
                         "--max-length or a larger GPU", field="student")
    return fit


def _split_eval(examples: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    import hashlib

    if fraction <= 0 or len(examples) < 20:
        return examples, []
    # split by problem id so the held-out loss is measured on problems never trained on
    def bucket(e):
        return int(hashlib.sha256(f"{seed}|{e['problem_id']}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    train = [e for e in examples if bucket(e) >= fraction]
    held = [e for e in examples if bucket(e) < fraction]
    return (train, held) if train and held else (examples, [])


def prepare_examples(rows: list[dict], tok, cfg: TrainConfig) -> list[dict]:
    out = []
    for r in rows:
        e = encode_example(tok, r["question"], r["text"], cfg.max_length, cfg.prompt_format)
        if e is not None:
            e["problem_id"] = r.get("problem_id", "")
            out.append(e)
    if not out:
        raise InputError("no usable training examples (all prompts longer than max_length?)", field="data")
    return out


def _latest_checkpoint(out: Path) -> Path | None:
    ck = sorted((out / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1]))
    ck = [p for p in ck if (p / "state.pt").exists()]
    return ck[-1] if ck else None


def _trainable_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def _save_checkpoint(out: Path, model, opt, sched, *, step: int) -> None:
    """Only the newest checkpoint is kept: it is complete before the older one goes (rename is atomic), and a
    full fine-tuning checkpoint of even the smallest student is ~1.6 GB."""
    import torch

    final = out / "checkpoints" / f"step-{step}"
    tmp = out / "checkpoints" / f".tmp-step-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    require_free(out, 3 * _trainable_bytes(model), f"the checkpoint of step {step}")  # weights + Adam's 2 moments
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step,
                    **rng_state()}, tmp / "state.pt")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)   # never leave half a checkpoint beside the good one
        raise
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)  # a checkpoint directory exists only when it is complete
    for old in (out / "checkpoints").glob("step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)


def rng_state() -> dict:
    """Every random generator a resumed run must continue from: torch's CPU one, and each CUDA device's."""
    import torch

    state = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch_rng"].cpu())
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])


def _load_checkpoint_weights(model, ck: Path) -> None:
    """LoRA checkpoints hold the adapter; full fine-tuning checkpoints the whole model (`train --full`)."""
    from safetensors.torch import load_file

    if (ck / "adapter_model.safetensors").exists():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(ck / "adapter_model.safetensors")))
        return
    state = {}
    for f in sorted(ck.glob("model*.safetensors")):
        state.update(load_file(str(f)))
    if not state:
        raise InputError("checkpoint holds neither adapter nor model weights", str(ck))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {k for k in missing if k.endswith("lm_head.weight")}   # tied to the embeddings, not saved twice
    if set(missing) - tied or unexpected:
        raise InputError(f"checkpoint does not fit the model (missing {sorted(set(missing) - tied)[:3]}, "
                         f"unexpected {sorted(unexpected)[:3]})", str(ck))


def _eval_loss(model, held: list[dict], pad_id: int, *, batch_size: int, budget: int, device: str,
               precision: str) -> float:
    import torch

    model.eval()
    tot, n = 0.0, 0
    with torch.no_grad(), autocast(device, precision):
        for s in range(0, len(held), batch_size):
            for mb in micro_batches(held, list(range(s, min(s + batch_size, len(held)))), budget):
                ids, labels, mask = (t.to(device) for t in collate([held[i] for i in mb], pad_id))
                loss, k = completion_loss(model, ids, labels, mask)
                tot, n = tot + float(loss), n + k
    model.train()
    return tot / max(1, n)


def build_model(cfg: TrainConfig, device: str, adapter: str | None = None):
    """`cfg.dtype` is the resolved precision. In bfloat16 the matrices compute in bf16 under autocast while every
    trained weight stays float32 (the master copy AdamW updates: a bf16 weight would round small updates away);
    frozen base weights under LoRA are stored in bf16, which the bundled and Qwen checkpoints already are."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    full_init = adapter is not None and trained_kind(adapter) == "full"   # continue a `--full` model (RSFT)
    frozen_bf16 = cfg.dtype == "bfloat16" and (cfg.lora or adapter) and not full_init
    model = load_model(cfg.student, "bfloat16" if frozen_bf16 else "float32", device,
                       path=adapter if full_init else None)
    model.config.use_cache = False
    if adapter and not full_init:
        model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
    elif cfg.lora and not full_init:
        lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=cfg.lora_targets, task_type="CAUSAL_LM")
        torch.manual_seed(cfg.seed)
        model = get_peft_model(model, lcfg)
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    return model


def autocast(device: str, precision: str):
    """bf16 compute for a float32-weighted model (master weights), or nothing in float32."""
    import torch

    kind = "cuda" if device.startswith("cuda") else "cpu"
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=precision == "bfloat16" and device != "mps")


def train_hf(rows: list[dict], cfg: TrainConfig, out_dir: str | Path, *, init_adapter: str | None = None,
             progress=None, heldout_rows: list[dict] | None = None) -> dict:
    import torch


    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(thread_budget())
    device = pick_device(cfg.device)
    cfg = replace(cfg, dtype=resolve_precision(cfg.dtype, device))   # train_config.json records what ran
    tok = load_tokenizer(cfg.student)
    examples = prepare_examples(rows, tok, cfg)
    if heldout_rows:
        train_ex, held = examples, prepare_examples(heldout_rows, tok, cfg)
    else:
        train_ex, held = _split_eval(examples, cfg.eval_fraction, cfg.seed)
    lengths = [len(e["input_ids"]) for e in train_ex]
    plan: list[list[int]] = []
    for ep in range(cfg.epochs if cfg.max_steps is None else 10_000):
        plan += ordered_batches(len(lengths), cfg.batch_size) if cfg.curriculum else \
            length_grouped_batches(lengths, cfg.batch_size, cfg.seed, ep)
        if cfg.max_steps is not None and len(plan) >= cfg.max_steps * cfg.grad_accum:
            break
    total_steps = cfg.total_steps(len(train_ex))
    plan = plan[: total_steps * cfg.grad_accum]
    if progress:
        progress(0, total_steps)     # the bar's clock starts before the model loads, not after the first step

    model = build_model(cfg, device, init_adapter)
    if cfg.dtype == "bfloat16" and device != "mps":      # every forward below runs under autocast()
        # peft casts each LoRA input up to its float32 weights, which autocast casts straight back to bf16: two
        # copies of the activations per adapted layer, both ways, that change no value (measured: the same losses
        # to the last digit, a LoRA step 10% faster, SmolLM2-135M, 1 thread, AMX Xeon)
        for m in model.modules():
            if hasattr(m, "cast_input_dtype_enabled"):
                m.cast_input_dtype_enabled = False
    if gpu_plan(cfg, device)[1]:   # activations recomputed in the backward pass: memory for time, on a GPU only
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    warm = max(1, int(cfg.warmup_ratio * total_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, then linear decay to 0
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (total_steps - s) / max(1, total_steps - warm)))
    step = 0
    ck = _latest_checkpoint(out)
    if ck is not None:
        _load_checkpoint_weights(model, ck)
        # tensors go to the CPU first: a checkpoint written on one GPU resumes on another device or on a CPU;
        # the optimizer moves its state onto its parameters' device itself
        state = torch.load(ck / "state.pt", weights_only=True, map_location="cpu")
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        restore_rng(state)
        step = state["step"]
    metrics_path = out / "metrics.jsonl"
    trim_metrics(metrics_path, step)
    log = AppendLog(metrics_path)
    t0, tokens_seen = time.time(), 0
    pad = tok.pad_token_id
    budget = micro_budget(cfg, device)
    while step < total_steps:
        opt.zero_grad(set_to_none=True)
        accum = plan[step * cfg.grad_accum: (step + 1) * cfg.grad_accum]
        n_tok = sum(train_ex[i]["n_completion"] for b in accum for i in b)
        loss_sum = 0.0
        for mb in (mb for b in accum for mb in micro_batches(train_ex, b, budget)):
            ids, labels, mask = (t.to(device) for t in collate([train_ex[i] for i in mb], pad))
            with autocast(device, cfg.dtype):
                loss, _ = completion_loss(model, ids, labels, mask)
            (loss / max(1, n_tok)).backward()
            loss_sum += float(loss.detach())
            tokens_seen += int(mask.sum())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        step += 1
        row = {"step": step, "loss": round(loss_sum / max(1, n_tok), 6), "lr": sched.get_last_lr()[0],
               "tokens": n_tok, "elapsed": round(time.time() - t0, 2)}
        if held and (step % cfg.eval_every == 0 or step == total_steps):
            row["eval_loss"] = round(_eval_loss(model, held, pad, batch_size=cfg.batch_size, budget=budget, device=device,
                                              precision=cfg.dtype), 6)
        log.append(row)
        if progress:
            progress(step, total_steps, row)
        if step % cfg.save_every == 0 and step < total_steps:
            _save_checkpoint(out, model, opt, sched, step=step)
    log.close()
    elapsed = time.time() - t0
    require_free(out, _trainable_bytes(model), "the trained weights")
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out / "tokenizer")
    write_json(out / "train_config.json", cfg.to_dict())
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return {"steps": total_steps, "examples": len(train_ex), "heldout": len(held), "seconds": round(elapsed, 2),
            "tokens_per_s": round(tokens_seen / max(elapsed, 1e-9), 1), "device": device, "precision": cfg.dtype,
            "threads": thread_budget()}


def trim_metrics(path: Path, step: int) -> None:
    """Keep only the metrics rows the checkpoint a run resumes from had seen (SFT and GRPO)."""
    if path.exists():
        kept = [ln for ln in path.read_text().splitlines() if ln.strip() and _step_of(ln) <= step]
        atomic_write_text(path, "".join(x + "\n" for x in kept))


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except ValueError:
        return 1 << 30
