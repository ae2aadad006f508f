"""Training configuration: preset defaults, overridden by the CLI; one schema for every backend."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from tracestyle.distill.models import load_preset
from tracestyle.errors import InputError
from tracestyle.precision import normalise


@dataclass
class TrainConfig:
    student: str = "smollm2-135m"
    backend: str = "hf"
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    lr: float = 2e-4
    batch_size: int = 8
    grad_accum: int = 1
    # an optimizer batch runs as micro-batches of at most this many padded tokens: the same gradient with a
    # fraction of the activation memory. None: 512 on CPU, the whole batch on GPUs; 0: always the whole batch.
    micro_batch_tokens: int | None = None
    max_length: int = 512
    epochs: int = 1
    max_steps: int | None = None
    warmup_ratio: float = 0.05
    eval_every: int = 50
    save_every: int = 50
    eval_fraction: float = 0.05
    seed: int = 0
    dtype: str = "auto"        # the precision: auto (bf16 where native: tracestyle/precision.py), bfloat16, float32
    prompt_format: str = "chat"
    device: str = "auto"
    curriculum: bool = False    # keep the data file's order (easy first) instead of shuffled length-grouped batches

    def to_dict(self) -> dict:
        return asdict(self)

    def total_steps(self, n_examples: int) -> int:
        """Optimizer steps for a run over `n_examples` (max_steps, else `epochs` passes)."""
        return self.max_steps or math.ceil(math.ceil(n_examples / self.batch_size) * self.epochs / self.grad_accum)

    def validate(self) -> TrainConfig:
        for name in ("lr", "batch_size", "grad_accum", "max_length", "epochs"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v <= 0:
                raise InputError(f"must be positive, got {v!r}", field=name)
        if self.micro_batch_tokens is not None and (not isinstance(self.micro_batch_tokens, int)
                                                    or self.micro_batch_tokens < 0):
            raise InputError(f"must be 0 (off) or a positive token count, got {self.micro_batch_tokens!r}",
                             field="micro_batch_tokens")
        if self.max_steps is not None and self.max_steps <= 0:
            raise InputError(f"must be positive, got {self.max_steps}", field="steps")
        if self.lora and not self.lora_targets:
            raise InputError("LoRA needs at least one target module", field="lora_targets")
        if self.backend not in ("hf", "unsloth", "mlx"):
            raise InputError(f"unknown backend '{self.backend}' (hf, unsloth, mlx)", field="backend")
        self.dtype = normalise(self.dtype, "precision")
        if self.prompt_format not in ("chat", "plain"):
            raise InputError("must be chat or plain", field="prompt_format")
        return self


def config_from_preset(student: str, **overrides) -> TrainConfig:
    """TrainConfig's defaults, then the preset's, then the caller's (None means "not given")."""
    training = dict(load_preset(student).training)
    lora = training.pop("lora", None) or {}
    for key, name in (("r", "lora_r"), ("alpha", "lora_alpha"), ("dropout", "lora_dropout"), ("targets", "lora_targets")):
        if key in lora:
            training[name] = list(lora[key]) if key == "targets" else lora[key]
    cfg = TrainConfig(student=student, **training)
    for k, v in overrides.items():
        if v is not None:
            if not hasattr(cfg, k):
                raise InputError("unknown training option", field=k)
            setattr(cfg, k, v)
    return cfg.validate()


# Rows decoded together in an evaluation. Measured on an AMD EPYC (AVX512_BF16, 2 cores), SmolLM2-135M, bf16,
# transformers with finished rows dropped, 64 KG prompts x 64 new tokens: 92 tokens/s at 16, 112 at 32, 117 at 64;
# on a quickstart cell (200 prompts, up to 266 tokens) 221 at 50, 244 at 100, 251 at 200. Larger batches only add
# memory from here (CTranslate2 caps its own: engine_ct2.BEST_BATCH).
EVAL_BATCH = 64


@dataclass
class EvalConfig:
    """An evaluation's settings (`tracestyle eval` flags, a grid's eval_* keys). `adapter`: a LoRA adapter or a
    fully fine-tuned model folder; `backend`: auto, hf, ct2, vllm or mlx; `fmt`: the prompt format (None: the one
    the weights were trained with); `kg`: point KG problems at this KG."""
    adapter: str | None = None
    batch_size: int = EVAL_BATCH
    max_new_tokens: int = 256
    temperature: float = 0.0
    device: str = "auto"
    backend: str = "auto"
    limit: int | None = None
    fmt: str | None = None
    kg: str | None = None
    precision: str = "auto"


@dataclass
class RSFTConfig:
    """Rejection sampling's settings beside the TrainConfig of its fine-tuning: rounds, k samples per problem and
    how they are drawn; `match_difficulty`: an eval problems file whose difficulty the pool follows (up to
    `pool_n` problems)."""
    rounds: int = 1
    k: int = 4
    init_adapter: str | None = None
    temperature: float = 0.8
    top_p: float = 0.95
    allow_eval_leak: bool = False
    max_new_tokens: int = 192
    batch_size: int = 8
    kg: str | None = None
    match_difficulty: str | None = None
    pool_n: int | None = None
    sampler: str = "hf"       # hf (transformers) or vllm: who samples the k completions
