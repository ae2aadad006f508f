"""Peak memory of a training or evaluation run, estimated from the model's shape (the preset's `architecture`),
without loading it: the plan a GPU hour is checked against (grid --dry-run), and the micro-batch budget and
gradient checkpointing a GPU gets.

The terms, in bytes (P parameters, T tokens in one micro-batch, L layers, H hidden size, V vocabulary):
weights — LoRA: the frozen base in the compute precision (2P in bf16, 4P in float32) plus the adapter; full: a float32
master copy (4P); gradients and AdamW's two moments — 12 bytes per trained parameter; activations kept for the
backward pass — about 34·T·H per layer in bf16 (Korthikanti et al., 2022, with fused attention: no T² term), twice
that in float32, or 2·T·H per layer plus one layer's worth with gradient checkpointing; the LM head's float32 logits
on completion tokens (T·V·4, twice for their gradient). Estimates, not measurements: the plan says so.
"""

from __future__ import annotations

GIB = 1024 ** 3
LORA_MATRICES = {"q_proj": ("h", "q"), "k_proj": ("h", "kv"), "v_proj": ("h", "kv"), "o_proj": ("q", "h"),
                 "gate_proj": ("h", "i"), "up_proj": ("h", "i"), "down_proj": ("i", "h")}


def _dims(arch: dict) -> dict:
    h = arch["hidden_size"]
    head = arch.get("head_dim") or h // arch["num_attention_heads"]
    return {"h": h, "i": arch["intermediate_size"], "q": head * arch["num_attention_heads"],
            "kv": head * arch.get("num_key_value_heads", arch["num_attention_heads"])}


def param_count(arch: dict) -> int:
    d, layers = _dims(arch), arch["num_hidden_layers"]
    per_layer = sum(d[a] * d[b] for a, b in LORA_MATRICES.values()) + 2 * d["h"]
    emb = arch["vocab_size"] * d["h"] * (1 if arch.get("tie_word_embeddings", True) else 2)
    return layers * per_layer + emb + d["h"]


def lora_params(arch: dict, r: int, targets: list[str]) -> int:
    d = _dims(arch)
    return arch["num_hidden_layers"] * sum(r * (d[a] + d[b]) for t, (a, b) in LORA_MATRICES.items() if t in targets)


def train_bytes(arch: dict, *, lora: bool, r: int, targets: list[str], precision: str, micro_tokens: int,
                checkpointing: bool = False, params: int | None = None) -> dict:
    """Peak training memory by part, in bytes."""
    p = params or param_count(arch)
    wb = 2 if precision == "bfloat16" else 4
    trained = lora_params(arch, r, targets) if lora else p
    weights = (wb * p if lora else 4 * p) + (4 * trained if lora else 0)
    if not lora and precision == "bfloat16":
        weights += 2 * p     # autocast's bf16 copy of each weight, alive during forward and backward
    optimizer = 12 * trained
    h, layers = arch["hidden_size"], arch["num_hidden_layers"]
    per_layer = 34 * micro_tokens * h * (1 if precision == "bfloat16" else 2)
    acts = (2 * micro_tokens * h * layers * wb // 2 + per_layer) if checkpointing else per_layer * layers
    logits = 2 * micro_tokens * arch["vocab_size"] * 4
    return {"weights": weights, "optimizer": optimizer, "activations": acts, "logits": logits,
            "total": weights + optimizer + acts + logits}


def eval_bytes(arch: dict, *, precision: str, batch: int, context: int, params: int | None = None) -> dict:
    """Peak evaluation memory: the merged weights and the KV cache of a full batch at its longest context."""
    p = params or param_count(arch)
    wb = 2 if precision == "bfloat16" else 4
    d = _dims(arch)
    kv = 2 * arch["num_hidden_layers"] * d["kv"] * batch * context * wb
    logits = batch * arch["vocab_size"] * 4
    return {"weights": wb * p, "kv_cache": kv, "logits": logits, "total": wb * p + kv + logits}


def micro_budget_for(arch: dict, free_bytes: int, *, lora: bool, r: int, targets: list[str], precision: str,
                     max_length: int, batch_tokens: int, params: int | None = None) -> tuple[int, bool] | None:
    """The largest micro-batch (in padded tokens, a multiple of max_length, at most the whole batch) that fits in
    90% of `free_bytes`, and whether gradient checkpointing is needed for it; None when even one sequence with
    checkpointing does not fit."""
    room = 0.9 * free_bytes
    for ckpt in (False, True):
        n = batch_tokens
        while n >= max_length:
            if train_bytes(arch, lora=lora, r=r, targets=targets, precision=precision, micro_tokens=n,
                           checkpointing=ckpt, params=params)["total"] <= room:
                return n, ckpt
            n -= max_length
    return None
