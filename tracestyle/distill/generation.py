"""Batched generation with transformers: left padding, greedy or sampled, stop at the end-of-turn token."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from pathlib import Path

from tracestyle.distill.examples import PLAIN_STOP, build_prompt, end_text, uses_chat
from tracestyle.distill.kv_cache import growing_cache
from tracestyle.distill.models import load_model, load_tokenizer
from tracestyle.errors import InputError

PRUNE_SHARE = 8     # ended rows leave the batch once they are 1/8 of it


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


def load_for_generation(student: str, adapter: str | None, device: str, precision: str = "float32"):
    """The student with its trained weights, computing in `precision` (resolved: bfloat16 or float32): a LoRA
    adapter merged in (no LoRA cost per token; merged in float32, then rounded once), or the folder of a fully
    fine-tuned model (`train --full`) in place of the base weights."""
    import torch

    if adapter and trained_kind(adapter) == "mlx_lora":
        raise InputError("an mlx-lm adapter (train --backend mlx): evaluate it with --backend mlx", str(adapter))
    tok = load_tokenizer(student)
    tok.padding_side = "left"
    if adapter and trained_kind(adapter) == "full":
        model = load_model(student, precision, device, path=str(adapter))
    else:
        model = load_model(student, "float32" if adapter else precision, device)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).merge_and_unload().to(getattr(torch, precision))
    model.eval()
    return model, tok


def _greedy_pruned(model, tok, enc, dec: Decoding, stop: list[int], stop_text: str | None, watch) -> list[tuple]:
    """Greedy decoding that drops each row from the batch (and its KV cache) as it ends, instead of padding it to
    the batch's longest row as `generate` does. Why: on a CPU a decoding step costs a fixed overhead plus a share per
    row, and half the rows of an evaluation batch end long before the last one (measured, quickstart base model:
    20k tokens kept of 38k computed). The same arithmetic per row as `generate` (positions from the attention mask,
    the cache), so rows come out as `generate` writes them (tests/test_eval_engine.py).
    Ended rows leave the batch once an eighth of it has ended (each removal copies every layer's cache: one per
    ended row was 10% of the decoding time at a batch of 100); until then they ride along, their tokens ignored.
    Returns per row (generated ids, how it ended: 'stop' | 'text' | 'loop' | 'limit')."""
    import torch

    ids, mask = enc["input_ids"], enc["attention_mask"]
    stops = set(stop) | ({tok.pad_token_id} if tok.pad_token_id is not None else set())
    pos = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 1)
    cache = growing_cache(model.config)
    # transformers 5.x renames the argument model by model (Gemma 3: `cache`); older releases know only the old name
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    kw = "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"

    def next_tokens(**inputs):
        # the head on a contiguous copy of the last position: measured, a bf16 merged-LoRA Gemma 3 took 10 s instead
        # of 22 ms for the head on the strided slice `logits_to_keep` hands it (the monotone soft-capping or scaling
        # some families apply after the head keeps the argmax, rounding ties aside, so the bare head is enough here)
        h = decoder(use_cache=True, **inputs, **{kw: cache}).last_hidden_state
        return greedy_pick(head, h[:, -1].contiguous())

    nxt = next_tokens(input_ids=ids, attention_mask=mask, position_ids=pos)
    alive, gen, how = list(range(ids.shape[0])), [[] for _ in range(ids.shape[0])], [""] * ids.shape[0]
    nxt_pos = pos[:, -1:] + 1
    while True:
        keep = []
        for j, (i, t) in enumerate(zip(alive, nxt.tolist())):
            if how[i]:
                continue
            gen[i].append(t)
            how[i] = ended(tok, gen[i], stops=stops, stop_text=stop_text, watch=watch,
                           max_new_tokens=dec.max_new_tokens) or ""
            if not how[i]:
                keep.append(j)
        if not keep:
            break
        if (len(alive) - len(keep)) * PRUNE_SHARE >= len(alive):
            sel = torch.tensor(keep, device=ids.device)
            cache.batch_select_indices(sel)
            mask, nxt_pos, nxt = mask[sel], nxt_pos[sel], nxt[sel]
            alive = [alive[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=-1)
        nxt = next_tokens(input_ids=nxt[:, None], attention_mask=mask, position_ids=nxt_pos)
        nxt_pos = nxt_pos + 1
    return list(zip(gen, how))


def greedy_pick(head, h):
    """Each row's highest-scoring word under the output head: argmax's answer (the first of tied maxima), read from
    max's indices at a quarter of argmax's time (Gemma 3's 262k words at 100 rows, one thread, AMX Xeon: 32 against
    94 ms a step; Gemma 3's evaluations 12-17% faster). Scoring the words in cache-sized blocks was faster alone
    (137 -> 107 ms a step with the head) but not with two jobs side by side sharing the cache: not kept."""
    return head(h).max(-1).indices


def generate_batch(model, tok, questions: list[str], dec: Decoding = Decoding(), *, watch=None) -> dict:
    """Greedy single samples decode with `_greedy_pruned`; sampling (RSFT's k samples) with transformers'
    `generate`. `watch`: a LoopWatch ending greedy rows stuck in a loop (marked truncated, as CTranslate2 does)."""
    import torch

    max_new_tokens, temperature, fmt = dec.max_new_tokens, dec.temperature, dec.fmt
    prompts = [build_prompt(tok, q, fmt) for q in questions]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    stop = stop_ids(tok, fmt)
    t0 = time.time()
    if temperature <= 0:
        with torch.no_grad():
            rows = _greedy_pruned(model, tok, enc, dec, stop, None if uses_chat(tok, fmt) else PLAIN_STOP, watch)
        rows = [r for r in rows for _ in range(dec.n)]     # greedy samples of one prompt are one sample
        return rows_result(tok, rows, fmt=fmt, max_new_tokens=max_new_tokens, seconds=time.time() - t0)
    torch.manual_seed(dec.seed)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                             eos_token_id=stop or None, num_return_sequences=dec.n, do_sample=True,
                             temperature=temperature, top_p=dec.top_p)
    secs = time.time() - t0
    texts, ntoks, truncated = [], [], []
    for row in out[:, enc["input_ids"].shape[1]:]:
        ids = [int(t) for t in row]
        cut = next((k for k, t in enumerate(ids) if t in stop or t == tok.pad_token_id), len(ids))
        ntoks.append(cut + (1 if cut < len(ids) else 0))
        text, cut_off = finish_row(tok, ids[:cut], stopped=cut < len(ids), fmt=fmt, at_limit=cut >= max_new_tokens)
        texts.append(text)
        truncated.append(cut_off)
    return {"texts": texts, "tokens": ntoks, "seconds": secs, "truncated": truncated, "loops_stopped": 0}


def end_row(tok, ids: list[int], *, stops: set, stop_text: str | None, watch, max_new_tokens: int) -> tuple[list, str]:
    """Where a row that an engine generated past its end (no stop string, no loop check) would have ended under
    `_greedy_pruned`'s rules, token by token: (ids up to and including the ending token, 'stop' | 'text' | 'loop' |
    'limit'). Engines without those checks apply this afterwards, so every engine ends rows alike."""
    row: list[int] = []
    for t in ids:
        row.append(t)
        how = ended(tok, row, stops=stops, stop_text=stop_text, watch=watch, max_new_tokens=max_new_tokens)
        if how:
            return row, how
    return row, "limit"


def ended(tok, row: list[int], *, stops: set, stop_text: str | None, watch, max_new_tokens: int) -> str | None:
    """Whether the row ends at its last token, and how ('stop' | 'text' | 'loop' | 'limit'), else None."""
    if row[-1] in stops:
        return "stop"
    if stop_text and stop_text in tok.decode(row[-12:]):
        return "text"
    if watch is not None and watch.stuck(row):
        return "loop"
    if len(row) >= max_new_tokens:
        return "limit"
    return None


def rows_result(tok, rows: list[tuple], *, fmt: str, max_new_tokens: int, seconds: float) -> dict:
    """generate_batch's result from (ids, how) rows, whoever generated them."""
    texts, ntoks, truncated = [], [], []
    for ids, how in rows:
        body = ids[:-1] if how == "stop" else ids
        text, cut_off = finish_row(tok, body, stopped=how == "stop", fmt=fmt,
                                   at_limit=how == "loop" or len(ids) >= max_new_tokens)
        texts.append(text)
        ntoks.append(len(ids))
        truncated.append(cut_off)
    return {"texts": texts, "tokens": ntoks, "seconds": seconds, "truncated": truncated,
            "loops_stopped": sum(how == "loop" for _, how in rows)}


def stop_ids(tok, fmt: str) -> list[int]:
    """The tokens that end a row: EOS and the end-of-turn token of a chat format."""
    return [i for i in {tok.eos_token_id, tok.convert_tokens_to_ids(end_text(tok, fmt)) if end_text(tok, fmt)
                        else None} if isinstance(i, int) and i >= 0]


def finish_row(tok, body: list[int], *, stopped: bool, fmt: str, at_limit: bool) -> tuple[str, bool]:
    """A generated row's text, and whether it was cut off by the token limit (its last line may be a fragment).
    Shared by every generation engine, so they end and flag rows alike."""
    text = tok.decode(body, skip_special_tokens=True)
    if not uses_chat(tok, fmt) and PLAIN_STOP in text:
        text, stopped = text.split(PLAIN_STOP)[0], True   # a base model's next "Question:" ends its answer
    return text.strip(), not stopped and at_limit
