"""Fast CPU generation with CTranslate2 over the merged weights (LoRA merged in, or a fully fine-tuned folder).

Why: on a CPU, transformers' `generate` spends most of each decoding step in Python and module overhead, not in
arithmetic (bench/README.md). CTranslate2 runs the same float32 weights with fused layers, padding removal and batch
reordering; greedy outputs match transformers' token for token on the prompts we checked (bench/eval_batching.py
reports the share). The converted model is cached by the content hash of the weights it came from; the cache is
capped (TRACESTYLE_CT2_CACHE_GB, default 4) and drops the least recently used conversions, because every trained
adapter adds one (0.5 GB for SmolLM2-135M, 1.1 GB for Gemma 3 270M in float32).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from tracestyle.diskspace import cache_cap_bytes, mark_used, prune_cache, require_free
from tracestyle.distill.examples import PLAIN_STOP, build_prompt, end_text, uses_chat
from tracestyle.distill.generation import Decoding, finish_row, load_for_generation, trained_kind, weights_file
from tracestyle.distill.loops import LoopWatch
from tracestyle.distill.models import cache_root, load_preset, load_tokenizer, resolve_model_path
from tracestyle.errors import MissingExtraError
from tracestyle.manifest import hash_file
from tracestyle.precision import thread_budget


def available() -> bool:
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


CAP_ENV, DEFAULT_CAP_GB = "TRACESTYLE_CT2_CACHE_GB", 4.0
# CTranslate2's own batch: measured on an AVX2 Xeon (bench/README.md, session 6), batches of 64 or 200 ran slower than
# 32 (it drops finished rows itself, so bigger batches only add attention and padding); an evaluation's larger
# batches (its resume points) are fed to it in pieces of this size
BEST_BATCH = 32
_DIGESTS: dict[tuple, str] = {}


def _digest(path: Path) -> str:
    """Content hash of a weights file or folder; remembered per file version, because a grid evaluates the same
    base model many times in one process and its weights are hundreds of MB."""
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    parts = []
    for f in files:
        st = f.stat()
        key = (str(f.resolve()), st.st_mtime_ns, st.st_size)
        if key not in _DIGESTS:
            _DIGESTS[key] = hash_file(f)
        parts.append(_DIGESTS[key])
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def version() -> str | None:
    try:
        import ctranslate2
    except ImportError:
        return None
    return ctranslate2.__version__


def _converted_path(student: str, adapter: str | None, compute_type: str) -> Path:
    import ctranslate2

    base = Path(resolve_model_path(load_preset(student).model))
    parts = [_digest(base) if base.exists() else str(base)]
    if adapter:
        parts.append(trained_kind(adapter) + ":" + _digest(weights_file(adapter)))
    key = hashlib.sha256("|".join(parts + [compute_type, ctranslate2.__version__]).encode()).hexdigest()[:20]
    return cache_root() / "ct2" / f"{student.replace('/', '__')}-{key}"


def is_converted(student: str, adapter: str | None, compute_type: str = "float32") -> bool:
    return available() and (_converted_path(student, adapter, compute_type) / "model.bin").exists()


def converted_dir(student: str, adapter: str | None, compute_type: str = "float32") -> Path:
    """The CTranslate2 model for a student (+ its trained weights), converted once and cached by content."""
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        raise MissingExtraError("ctranslate2", "fast") from None
    out = _converted_path(student, adapter, compute_type)
    root = out.parent
    if (out / "model.bin").exists():
        mark_used(out)
        return out
    model, tok = load_for_generation(student, adapter, "cpu")   # float32, LoRA merged in
    weight_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    prune_cache(root, max(0, cache_cap_bytes(CAP_ENV, DEFAULT_CAP_GB) - weight_bytes), is_temp=_is_temp)
    require_free(root, weight_bytes, f"converting {student} for CTranslate2")
    tmp_cfg = out.with_name(out.name + f".hf{os.getpid()}")
    tmp_ct = out.with_name(out.name + f".ct{os.getpid()}")
    try:
        model.config.save_pretrained(tmp_cfg)     # the converter reads the config and tokenizer from a folder,
        tok.save_pretrained(tmp_cfg)              # the weights from the model in memory (no GB-sized round trip)
        _convert_in_memory(model, tmp_cfg, tmp_ct, None if compute_type == "float32" else compute_type)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp_ct, out)
        except OSError:   # another process converted it first
            pass
    finally:
        shutil.rmtree(tmp_cfg, ignore_errors=True)
        shutil.rmtree(tmp_ct, ignore_errors=True)
    mark_used(out)
    return out


def _convert_in_memory(model, folder: Path, out: Path, quantization: str | None) -> None:
    """CTranslate2's own Transformers converter, handed the merged model instead of loading it again from disk."""
    import ctranslate2

    class InMemory(ctranslate2.converters.TransformersConverter):
        def load_model(self, model_class, model_name_or_path, **kwargs):
            return model

    InMemory(str(folder)).convert(str(out), quantization=quantization, force=True)


def _is_temp(entry: Path) -> bool:
    """A conversion in progress (or left by a killed one): `<name>.hf<pid>` / `<name>.ct<pid>`."""
    _, dot, tail = entry.name.rpartition(".")
    return bool(dot) and tail[:2] in ("hf", "ct") and tail[2:].isdigit()


def _stopper(tok, stop: str | None, watch: LoopWatch | None, looped: set):
    """A per-token callback ending a row at a stop string (CTranslate2 has none) or inside a loop (`watch`)."""
    ids: dict[int, list[int]] = {}

    def cb(step) -> bool:
        row = ids.setdefault(step.batch_id, [])
        row.append(step.token_id)
        if stop and stop in tok.decode(row[-12:]):
            return True
        if watch and watch.stuck(row):
            looped.add(step.batch_id)
            return True
        return False
    return cb


class CT2Generator:
    """Batched generation with the same prompts, stops and outputs dict as distill.generation.generate_batch."""

    def __init__(self, student: str, adapter: str | None, *, compute_type: str = "float32",
                 threads: int | None = None) -> None:
        import ctranslate2

        self.tok = load_tokenizer(student)
        self.watch = LoopWatch(self.tok)
        self.compute_type = compute_type
        self.model = ctranslate2.Generator(str(converted_dir(student, adapter, compute_type)), device="cpu",
                                           compute_type=compute_type, intra_threads=threads or thread_budget())

    def generate(self, questions: list[str], dec: Decoding = Decoding(), *, batch_size: int = 32,
                 stop_loops: bool = True) -> dict:
        """`stop_loops`: end a greedy row stuck in a loop early (distill/loops.py; marked truncated, scored as if it
        had run to the limit: its cut-off fragment cannot count as the answer)."""
        tok = self.tok
        max_new_tokens, temperature, fmt, num_return_sequences = dec.max_new_tokens, dec.temperature, dec.fmt, dec.n
        top_p, seed = dec.top_p, dec.seed
        prompts = [tok.convert_ids_to_tokens(tok(build_prompt(tok, q, fmt), add_special_tokens=False)["input_ids"])
                   for q in questions]
        ends = [t for t in {tok.eos_token, end_text(tok, fmt)} if t]
        kw: dict = {"sampling_topk": 1}
        if temperature > 0:
            kw = {"sampling_topk": 0, "sampling_topp": top_p, "sampling_temperature": temperature,
                  "num_hypotheses": num_return_sequences, "random_seed": seed}
        # the prefix every prompt shares (chat template + system message) runs once and its state is cached
        shared = os.path.commonprefix(prompts) if len(prompts) > 1 else []
        if 4 <= len(shared) < min(len(p) for p in prompts):
            kw["static_prompt"] = shared
            prompts = [p[len(shared):] for p in prompts]
        # batches of near-equal prompt lengths: CTranslate2 runs only the batch's shortest prompt length in one
        # parallel pass and feeds the rest of each longer prompt one token per decoding step
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        prompts = [prompts[i] for i in order]
        res, looped = [], set()
        t0 = time.time()
        # one call per batch, so that a callback's batch index is the row's index inside its own call
        for s in range(0, len(prompts), batch_size):
            here: set = set()
            if num_return_sequences == 1 and temperature == 0:
                kw["callback"] = _stopper(tok, None if uses_chat(tok, fmt) else PLAIN_STOP,
                                          self.watch if stop_loops else None, here)
            res += self.model.generate_batch(prompts[s: s + batch_size], max_batch_size=batch_size,
                                             max_length=max_new_tokens, include_prompt_in_result=False,
                                             end_token=ends, return_end_token=True, **kw)
            looped |= {order[s + i] for i in here}
        secs = time.time() - t0
        unsorted = [None] * len(res)
        for pos, i in enumerate(order):
            unsorted[i] = res[pos]
        res = unsorted
        end_ids = {tok.convert_tokens_to_ids(t) for t in ends}
        texts, ntoks, truncated = [], [], []
        for i, r in enumerate(res):
            for ids in r.sequences_ids[:num_return_sequences]:
                stopped = bool(ids) and ids[-1] in end_ids
                text, cut_off = finish_row(tok, ids[:-1] if stopped else ids, stopped=stopped, fmt=fmt,
                                           at_limit=len(ids) >= max_new_tokens or i in looped)
                texts.append(text)
                ntoks.append(len(ids))
                truncated.append(cut_off)
        return {"texts": texts, "tokens": ntoks, "seconds": secs, "truncated": truncated, "loops_stopped": len(looped)}
