"""Evaluation generation with mlx-lm (Apple silicon; mlx[cpu] on Linux, slowly); imported lazily."""

from __future__ import annotations

from tracestyle.distill.examples import build_prompt
from tracestyle.distill.models import load_preset, resolve_model_path
from tracestyle.errors import MissingExtraError


def generate_mlx(student: str, adapter: str | None, questions: list[str], *, max_new_tokens: int,
                 temperature: float, fmt: str = "chat") -> list[str]:
    try:
        from mlx_lm import generate, load
        from mlx_lm.sample_utils import make_sampler
    except ImportError:
        raise MissingExtraError("mlx-lm", "mlx") from None

    import mlx.core as mx

    model, tok = load(resolve_model_path(load_preset(student).model), adapter_path=adapter)
    if mx.default_device() == mx.cpu:
        # float32 on a CPU, as the transformers and CTranslate2 paths use there: bfloat16 (the checkpoint's
        # dtype, mlx's default) changes greedy outputs from the first tokens on
        model.set_dtype(mx.float32)
    sampler = make_sampler(temp=temperature)
    return [generate(model, tok, prompt=build_prompt(tok, q, fmt), max_tokens=max_new_tokens, sampler=sampler)
            for q in questions]
