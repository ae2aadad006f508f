"""SFT examples: prompt (the student's view of the problem) + completion (the trace), tokenized with
the prompt masked out of the loss, batched by length so padding stays small."""

from __future__ import annotations

from random import Random

SYSTEM = "You are a helpful assistant that solves problems step by step."


def chat_messages(question: str) -> list[dict]:
    # an explicit system message keeps chat templates from injecting their own default one
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


# a base model continues "Question: … Answer: …" documents: the next "Question:" ends its answer
PLAIN_STOP = "\nQuestion:"


def plain_prompt(question: str, bos: str = "") -> str:
    # no newline after "Answer:": base models (Gemma 3 270M) answer there, but repeat "Answer:" after a newline
    return f"{bos}Question: {question}\nAnswer:"


def _bos_text(tok) -> str:
    """The BOS token as text when the tokenizer would add it (Gemma needs it; prompts are encoded without
    special tokens so that chat templates, which write their own, are not doubled)."""
    bos = getattr(tok, "bos_token", None)
    if not bos:
        return ""
    with_special = tok("x")["input_ids"]
    return bos if with_special and with_special[0] == tok.bos_token_id else ""


def build_prompt(tok, question: str, fmt: str = "chat") -> str:
    """The student's prompt, the same for training and evaluation on every backend (hf, vllm, mlx):
    the chat template when asked and the tokenizer has one, else the plain "Question: … Answer:" format."""
    if fmt == "chat" and getattr(tok, "chat_template", None):
        return tok.apply_chat_template(chat_messages(question), tokenize=False, add_generation_prompt=True)
    return plain_prompt(question, _bos_text(tok))


def uses_chat(tok, fmt: str) -> bool:
    return fmt == "chat" and bool(getattr(tok, "chat_template", None))


def completion_text(tok, completion: str, fmt: str) -> str:
    """The trace as the student should write it after its prompt (plain: after "Answer: ")."""
    text = completion.strip() + end_text(tok, fmt)
    return text if uses_chat(tok, fmt) else " " + text


def end_text(tok, fmt: str = "chat") -> str:
    if fmt == "chat" and getattr(tok, "chat_template", None) and "<|im_end|>" in (tok.chat_template or ""):
        return "<|im_end|>"
    return tok.eos_token or ""


def encode_example(tok, question: str, completion: str, max_length: int, fmt: str = "chat") -> dict | None:
    p = tok(build_prompt(tok, question, fmt), add_special_tokens=False)["input_ids"]
    c = tok(completion_text(tok, completion, fmt), add_special_tokens=False)["input_ids"]
    if len(p) >= max_length - 8:
        return None  # a prompt that leaves no room for the trace teaches nothing
    c = c[: max_length - len(p)]
    return {"input_ids": p + c, "labels": [-100] * len(p) + c, "n_completion": len(c)}


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffle, then sort inside chunks of 50 batches by length: little padding, still random across steps."""
    rng = Random(seed * 1000 + epoch)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    chunk = batch_size * 50
    batches = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s: s + chunk], key=lambda i: lengths[i])
        batches += [part[j: j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def ordered_batches(n: int, batch_size: int) -> list[list[int]]:
    """The file's order, batch after batch: a curriculum (easy first) must not be shuffled away."""
    return [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]


def collate(examples: list[dict], pad_id: int):
    import torch

    n = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), n), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for i, e in enumerate(examples):
        L = len(e["input_ids"])
        ids[i, :L] = torch.tensor(e["input_ids"])
        labels[i, :L] = torch.tensor(e["labels"])
        mask[i, :L] = 1
    return ids, labels, mask
