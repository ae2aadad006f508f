"""vLLM teacher: offline batched generation (vllm.LLM), in the interpreter that has vLLM (the GPU build in this
environment, or the CPU build in its own: distill/vllm_worker.py). Each completion keeps vLLM's finish reason
(a trace cut at max_tokens is flagged, and the `correct` filter will not read its fragment as the answer) and its
token usage (the cost table)."""

from __future__ import annotations

from tracestyle.distill.vllm_worker import run_vllm, vllm_python
from tracestyle.errors import InputError


def vllm_sampling_kwargs(*, k: int, temperature: float, top_p: float, max_tokens: int, seed: int) -> dict:
    return {"n": k, "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed}


def generate_vllm(model: str, message_lists: list[list[dict]], *, k: int = 1, temperature: float = 0.7,
                  top_p: float = 1.0, max_tokens: int = 512, seed: int = 0, max_model_len: int | None = None,
                  tensor_parallel_size: int | None = None, gpu_memory_utilization: float | None = None,
                  dtype: str = "auto") -> list[list[dict]]:
    """k completions per chat, each {text, finish_reason, usage}; vLLM batches and schedules all prompts itself.
    The chat template is applied here (token ids go to vLLM: no special token is added twice)."""
    from transformers import AutoTokenizer

    vllm_python()
    try:
        tok = AutoTokenizer.from_pretrained(model)
    except OSError as e:
        raise InputError(f"cannot load the teacher's tokenizer: {str(e).splitlines()[0]}", field="model") from None
    if not getattr(tok, "chat_template", None):
        raise InputError(f"teacher '{model}' has no chat template (the vllm teacher sends chats)", field="model")
    prompts = [list(tok.apply_chat_template(m, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])
               for m in message_lists]
    req = {"model": model, "prompts": prompts, "dtype": dtype, "max_model_len": max_model_len,
           "tensor_parallel_size": tensor_parallel_size, "gpu_memory_utilization": gpu_memory_utilization,
           **vllm_sampling_kwargs(k=k, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)}
    out = []
    for per_prompt in run_vllm(req):
        out.append([{"text": tok.decode(c["ids"], skip_special_tokens=True).strip(), "finish_reason": c["finish_reason"],
                     "usage": {"prompt_tokens": c["prompt_tokens"], "completion_tokens": len(c["ids"])}}
                    for c in per_prompt])
    return out
