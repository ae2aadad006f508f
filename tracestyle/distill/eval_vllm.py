"""Evaluation generation with vLLM and a LoRA adapter (GPU users); imported lazily."""

from __future__ import annotations

from tracestyle.errors import MissingExtraError


def generate_vllm_lora(student: str, adapter: str | None, questions: list[str], max_new_tokens: int,
                       temperature: float) -> list[str]:
    try:
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest
    except ImportError:
        raise MissingExtraError("vllm", "vllm") from None
    from tracestyle.distill.data import SYSTEM
    from tracestyle.distill.models import load_preset, resolve_model_path

    llm = LLM(model=resolve_model_path(load_preset(student).model), enable_lora=bool(adapter))
    chats = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in questions]
    lora = LoRARequest("student", 1, adapter) if adapter else None
    outs = llm.chat(chats, SamplingParams(temperature=temperature, max_tokens=max_new_tokens), lora_request=lora)
    return [o.outputs[0].text for o in outs]
