"""Evaluation generation with vLLM and a LoRA adapter (GPU users); imported lazily."""

from __future__ import annotations

from tracestyle.distill.examples import build_prompt
from tracestyle.distill.models import load_preset, resolve_model_path
from tracestyle.errors import MissingExtraError


def generate_vllm_lora(student: str, adapter: str | None, questions: list[str], *, max_new_tokens: int,
                       temperature: float, fmt: str = "chat") -> list[str]:
    try:
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest
    except ImportError:
        raise MissingExtraError("vllm", "vllm") from None

    llm = LLM(model=resolve_model_path(load_preset(student).model), enable_lora=bool(adapter))
    # the same prompt text as the hf and mlx paths: the shared builder, fed to generate (not chat)
    prompts = [build_prompt(llm.get_tokenizer(), q, fmt) for q in questions]
    lora = LoRARequest("student", 1, adapter) if adapter else None
    outs = llm.generate(prompts, SamplingParams(temperature=temperature, max_tokens=max_new_tokens), lora_request=lora)
    return [o.outputs[0].text for o in outs]
