"""vLLM teacher for GPU users: offline batched generation with vllm.LLM (imported lazily)."""

from __future__ import annotations

from tracestyle.errors import MissingExtraError


def vllm_sampling_kwargs(*, k: int, temperature: float, top_p: float, max_tokens: int, seed: int) -> dict:
    return {"n": k, "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed}


def generate_vllm(model: str, message_lists: list[list[dict]], *, k: int = 1, temperature: float = 0.7,
                  top_p: float = 1.0, max_tokens: int = 512, seed: int = 0, **llm_kwargs) -> list[list[str]]:
    """k completions per chat; vLLM batches and schedules all prompts itself."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        raise MissingExtraError("vllm", "vllm") from None
    llm = LLM(model=model, seed=seed, **llm_kwargs)
    params = SamplingParams(**vllm_sampling_kwargs(k=k, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed))
    outputs = llm.chat(message_lists, params, use_tqdm=True)
    return [[c.text for c in o.outputs] for o in outputs]
