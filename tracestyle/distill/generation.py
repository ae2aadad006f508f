"""Batched generation with transformers: left padding, greedy or sampled, stop at the end-of-turn token."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tracestyle.distill.examples import PLAIN_STOP, build_prompt, end_text, uses_chat
from tracestyle.distill.models import load_model, load_tokenizer
from tracestyle.errors import InputError


@dataclass(frozen=True)
class Decoding:
    """How rows are decoded, the same on every engine: token limit, temperature (0: greedy), top-p, samples per
    prompt (n), the prompt format, and the sampling seed."""
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    fmt: str = "chat"
    seed: int = 0


def trained_kind(folder: str | Path) -> str:
    """'lora' (a peft adapter: adapter_config.json), 'mlx_lora' (an mlx-lm adapter: adapters.safetensors) or
    'full' (a whole fine-tuned model: config.json + model.safetensors)."""
    f = Path(folder)
    if (f / "adapters.safetensors").exists() and not (f / "adapter_model.safetensors").exists():
        return "mlx_lora"
    if (f / "adapter_config.json").exists():
        return "lora"
    if (f / "config.json").exists() and any(f.glob("model*.safetensors")):
        return "full"
    raise InputError("neither a LoRA adapter (adapter_config.json) nor a fully fine-tuned model (config.json + "
                     "model.safetensors)", str(folder))


def weights_file(folder: str | Path) -> Path:
    f = Path(folder)
    kind = trained_kind(f)
    if kind == "mlx_lora":
        return f / "adapters.safetensors"
    return f / "adapter_model.safetensors" if kind == "lora" else sorted(f.glob("model*.safetensors"))[0]


def load_for_generation(student: str, adapter: str | None, device: str):
    """The student with its trained weights: a LoRA adapter merged in (no LoRA cost per token), or the folder
    of a fully fine-tuned model (`train --full`) in place of the base weights."""
    if adapter and trained_kind(adapter) == "mlx_lora":
        raise InputError("an mlx-lm adapter (train --backend mlx): evaluate it with --backend mlx", str(adapter))
    tok = load_tokenizer(student)
    tok.padding_side = "left"
    dtype = "float32" if device == "cpu" else "bfloat16"
    if adapter and trained_kind(adapter) == "full":
        model = load_model(student, dtype, device, path=str(adapter))
    else:
        model = load_model(student, dtype, device)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.eval()
    return model, tok


class _RowStops:
    """Ends a greedy row as CTranslate2's per-token callback does (engine_ct2._stopper): at a base model's next
    "Question:" or inside a loop (distill/loops.py), so that both engines return the same rows. Remembers where
    and why each row ended; transformers pads the row after that."""

    def __init__(self, tok, prompt_len: int, stop_ids: set, stop_text: str | None, watch) -> None:
        self.tok, self.prompt_len, self.stop_ids = tok, prompt_len, stop_ids
        self.stop_text, self.watch = stop_text, watch
        self.ended: dict[int, tuple[int, bool]] = {}   # row -> (tokens kept, looped)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = []
        for i, row in enumerate(input_ids[:, self.prompt_len:].tolist()):
            if i in self.ended or any(t in self.stop_ids for t in row):
                done.append(i in self.ended)   # an end token: transformers' own criterion ends the row
                continue
            if self.stop_text and self.stop_text in self.tok.decode(row[-12:]):
                self.ended[i] = (len(row), False)
            elif self.watch is not None and self.watch.stuck(row):
                self.ended[i] = (len(row), True)
            done.append(i in self.ended)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def generate_batch(model, tok, questions: list[str], dec: Decoding = Decoding(), *, watch=None) -> dict:
    """`watch`: a LoopWatch ending greedy rows stuck in a loop (marked truncated, as CTranslate2 does)."""
    import torch
    from transformers import StoppingCriteriaList

    max_new_tokens, temperature, fmt = dec.max_new_tokens, dec.temperature, dec.fmt
    num_return_sequences = dec.n

    prompts = [build_prompt(tok, q, fmt) for q in questions]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    stop = [i for i in {tok.eos_token_id, tok.convert_tokens_to_ids(end_text(tok, fmt)) if end_text(tok, fmt)
                        else None} if isinstance(i, int) and i >= 0]
    kw = dict(max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id, eos_token_id=stop or None,
              num_return_sequences=num_return_sequences)
    rows = None
    if temperature > 0:
        torch.manual_seed(dec.seed)
        kw.update(do_sample=True, temperature=temperature, top_p=dec.top_p)
    else:
        kw.update(do_sample=False)
        if num_return_sequences == 1:    # the same rule as CTranslate2's callback
            rows = _RowStops(tok, enc["input_ids"].shape[1], set(stop),
                             None if uses_chat(tok, fmt) else PLAIN_STOP, watch)
            kw["stopping_criteria"] = StoppingCriteriaList([rows])
    t0 = time.time()
    with torch.no_grad():
        out = model.generate(**enc, **kw)
    secs = time.time() - t0
    gen = out[:, enc["input_ids"].shape[1]:]
    texts, ntoks, truncated = [], [], []
    for i, row in enumerate(gen):
        ids = [int(t) for t in row]
        if rows is not None and i in rows.ended:
            kept, looped = rows.ended[i]
            ntoks.append(kept)
            text, cut_off = finish_row(tok, ids[:kept], stopped=False, fmt=fmt,
                                       at_limit=kept >= max_new_tokens or looped)
        else:
            cut = next((k for k, t in enumerate(ids) if t in stop or t == tok.pad_token_id), len(ids))
            ntoks.append(cut + (1 if cut < len(ids) else 0))
            text, cut_off = finish_row(tok, ids[:cut], stopped=cut < len(ids), fmt=fmt,
                                       at_limit=cut >= max_new_tokens)
        texts.append(text)
        truncated.append(cut_off)
    loops = sum(looped for _, looped in rows.ended.values()) if rows is not None else 0
    return {"texts": texts, "tokens": ntoks, "seconds": secs, "truncated": truncated, "loops_stopped": loops}


def finish_row(tok, body: list[int], *, stopped: bool, fmt: str, at_limit: bool) -> tuple[str, bool]:
    """A generated row's text, and whether it was cut off by the token limit (its last line may be a fragment).
    Shared by every generation engine, so they end and flag rows alike."""
    text = tok.decode(body, skip_special_tokens=True)
    if not uses_chat(tok, fmt) and PLAIN_STOP in text:
        text, stopped = text.split(PLAIN_STOP)[0], True   # a base model's next "Question:" ends its answer
    return text.strip(), not stopped and at_limit
