"""`grid SPEC --dry-run`: each cell's stages with their backend, device, precision, LoRA or full, estimated peak
memory and time, and every blocker found without loading a model, so a GPU hour is not spent finding them.

Blockers: the device the spec asks for is absent; a package a stage needs is missing; a LoRA rank over what the
evaluation engine loads; a stage whose estimated peak memory exceeds the device's even with gradient checkpointing
and one sequence per micro-batch; trainer arguments the installed TRL rejects (built for real, as the run would).
Memory and time are estimates from the model's shape (distill/memory.py), said to be so in the output.
"""

from __future__ import annotations

import importlib.util
import time

from tracestyle.ablations.executors import train_config
from tracestyle.ablations.spec import GridSpec
from tracestyle.distill.memory import GIB, eval_bytes, micro_budget_for, train_bytes
from tracestyle.distill.models import load_preset
from tracestyle.precision import resolve_precision

# vLLM loads LoRA adapters up to max_lora_rank, one of these (vllm/config/lora.py); tracestyle passes the smallest
# one at or above the adapter's rank
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
NEEDS = {"hf": ["torch", "transformers", "peft"], "unsloth": ["unsloth", "trl"], "mlx": ["mlx_lm"],
         "vllm": ["vllm"], "ct2": ["ctranslate2"], "auto": ["torch", "transformers"]}
PROMPT_TOKENS = 256     # a planning figure for one prompt (GSM8K ~100, open-book KG ~200)


def _device(spec: GridSpec) -> tuple[str, bool, float | None]:
    """(device, present, memory GiB): the spec's device, whether this machine has it, and its memory."""
    import torch

    want = spec.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda":
        if not torch.cuda.is_available():
            return want, False, spec.gpu_memory_gb
        return want, True, torch.cuda.get_device_properties(0).total_memory / GIB
    import os

    return want, True, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB


def _matmul_tflops(device: str, precision: str) -> float:
    """This device's dense matrix product speed in the precision (a 1,024 x 1,024 product, best of three)."""
    import torch

    dt = getattr(torch, precision)
    a = torch.randn(1024, 1024, device=device).to(dt)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(4):
            a @ a
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / 4)
    return 2 * 1024 ** 3 / best / 1e12


def _trl_rejects(cfg, device_present: bool) -> str | None:
    """Build the installed TRL's real SFTConfig from the unsloth backend's arguments."""
    from tracestyle.distill.sft_unsloth import unsloth_args

    try:
        from trl import SFTConfig
    except ImportError:
        return None     # reported as a missing package
    args = unsloth_args(cfg, "model", "/tmp/tracestyle-plan", 1000)["sft"]
    if not device_present:
        args = {**args, "bf16": False, "use_cpu": True}   # hardware checks are the device blocker's business
    try:
        SFTConfig(**args)
    except TypeError as e:
        return f"the installed TRL rejects the unsloth trainer arguments: {e}"
    return None


def plan(spec: GridSpec) -> tuple[list[dict], list[str]]:
    """(one row per student and stage, blockers)."""
    device, present, mem_gib = _device(spec)
    blockers: list[str] = []
    if not present:
        blockers.append(f"no CUDA device: the spec asks for device: {spec.device}, and torch sees no GPU here")
    precision = resolve_precision(spec.precision, device) if present else \
        ("float32" if spec.precision in ("float32", "fp32") else "bfloat16")
    tflops = _matmul_tflops(device, precision) * 0.4 if present else spec.gpu_tflops
    needs = set(NEEDS[spec.train_backend] + NEEDS[spec.eval_backend]) | ({"ray"} if spec.executor == "ray" else set())
    needs |= {"trl", "datasets"} if spec.grpo_variants() else set()
    for pkg in sorted(needs):
        if importlib.util.find_spec(pkg) is None:
            blockers.append(f"package '{pkg}' is not installed (needed by the {spec.train_backend} trainer, the "
                            f"{spec.eval_backend} evaluation or the {spec.executor} executor)")
    rows = []
    for st in spec.students:
        pre = load_preset(st)
        arch = pre.architecture
        cfg = train_config(spec, {"student": st, "seed": spec.seeds[0], "data": None})
        cfg.dtype = precision
        lora = cfg.lora
        if spec.train_backend == "unsloth":
            why = _trl_rejects(cfg, present)
            if why:
                blockers.append(f"{st}: {why}")
        if spec.eval_backend == "vllm" and lora and cfg.lora_r > VLLM_LORA_RANKS[-1]:
            blockers.append(f"{st}: LoRA rank {cfg.lora_r} is over vLLM's largest max_lora_rank "
                            f"({VLLM_LORA_RANKS[-1]})")
        if not arch:
            rows.append({"student": st, "stage": "train+eval", "note": "no architecture in the preset: not sized"})
            continue
        batch_tokens = cfg.batch_size * cfg.max_length
        fit = micro_budget_for(arch, int((mem_gib or 1e9) * GIB), lora=lora, r=cfg.lora_r, targets=cfg.lora_targets,
                               precision=precision, max_length=cfg.max_length, batch_tokens=batch_tokens,
                               params=pre.params)
        micro, ckpt = fit if fit else (cfg.max_length, True)
        tb = train_bytes(arch, lora=lora, r=cfg.lora_r, targets=cfg.lora_targets, precision=precision,
                         micro_tokens=micro, checkpointing=ckpt, params=pre.params)
        params = pre.params or 0
        # an upper bound: every train problem one trace of max_length tokens, each epoch
        train_tokens = spec.train_n * cfg.max_length * max(1, cfg.epochs)
        eval_ctx = PROMPT_TOKENS + (spec.eval_max_new_tokens if isinstance(spec.eval_max_new_tokens, int) else 512)
        eb = eval_bytes(arch, precision=precision, batch=spec.eval_batch_size, context=eval_ctx, params=pre.params)
        # GRPO: every step generates prompts x generations completions, then trains on them
        rl_tokens = spec.rl_steps * spec.rl_prompts_per_step * spec.rl_generations * (PROMPT_TOKENS + spec.rl_max_new_tokens)
        flops = {"train": (4 if lora else 6) * params * train_tokens,
                 "eval": 2 * params * spec.eval_n * eval_ctx, "rl": (2 + (4 if lora else 6)) * params * rl_tokens}
        rb = train_bytes(arch, lora=lora, r=cfg.lora_r, targets=cfg.lora_targets, precision=precision,
                         micro_tokens=spec.rl_prompts_per_step * spec.rl_generations *
                         (PROMPT_TOKENS + spec.rl_max_new_tokens), checkpointing=False, params=pre.params)
        trained = len(spec.conditions()) * len(spec.seeds) if spec.sft_trained() else 0
        if spec.refine is not None:     # at most: round 0 and every later round, one register version each
            trained = (1 + (spec.refine.get("rounds", 3))) * len(spec.seeds)
        # an RSFT variant samples then fine-tunes: planned as a training stage
        n_rsft = sum(1 for c in spec.rl_conditions() if c.split("@")[1] in
                     {v["name"] for v in spec.rl_variants() if v["method"] == "rsft"}) * len(spec.seeds)
        trained += n_rsft
        n_rl = len(spec.rl_conditions()) * len(spec.seeds) - n_rsft
        count = {"train": trained, "rl": n_rl, "eval": (trained + n_rl + 1) * (1 + len(spec.transfer))}
        for stage, b in (("train", tb), ("rl", rb), ("eval", eb)):
            cells = count[stage]
            if not cells:
                continue
            rows.append({
                "student": st, "stage": stage, "cells": cells, "device": device, "precision": precision,
                "backend": {"train": spec.train_backend, "rl": "trl grpo"}.get(stage, spec.eval_backend),
                "weights": ("full" if not lora else f"LoRA r{cfg.lora_r}") if stage != "eval" else "merged",
                "peak_gib": round(b["total"] / GIB, 1),
                "micro_batch": f"{micro} tokens{' + gradient checkpointing' if ckpt else ''}" if stage == "train" else
                f"{spec.rl_prompts_per_step} x {spec.rl_generations} completions" if stage == "rl" else
                f"batch {spec.eval_batch_size} x {eval_ctx} tokens",
                "minutes_per_cell": round(flops[stage] / (tflops * 1e12) / 60, 1) if tflops else None})
            if mem_gib and b["total"] > mem_gib * GIB:
                blockers.append(f"{st} {stage}: needs ~{b['total'] / GIB:.1f} GiB, the device has {mem_gib:.0f} GiB "
                                "(estimate; gradient checkpointing and one sequence per micro-batch included)")
    return rows, blockers
