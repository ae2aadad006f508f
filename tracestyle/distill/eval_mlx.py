"""Evaluation generation with mlx-lm (Apple silicon; mlx[cpu] on Linux, slowly); imported lazily. The same rows as
the transformers path: the one prompt builder fed as token ids, and each row ended token by token by the same rules
(EOS, end-of-turn or pad; a base model's next "Question:"; a loop; the limit), with `truncated` and token counts."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from tracestyle.distill.examples import PLAIN_STOP, build_prompt, uses_chat
from tracestyle.distill.generation import Decoding, ended, load_for_generation, rows_result, stop_ids, trained_kind
from tracestyle.distill.loops import LoopWatch
from tracestyle.distill.models import load_preset, load_tokenizer, resolve_model_path
from tracestyle.errors import MissingExtraError


def rope_overrides(folder: Path) -> dict:
    """The RoPE settings mlx-lm reads at the top of config.json, for a folder transformers 5 saved: it writes them
    into `rope_parameters` (one dict, or one per attention type for Gemma 3), where mlx-lm does not look and falls
    back to its default base (10,000 against SmolLM2's 100,000: other outputs from the first token)."""
    cfg = json.loads((folder / "config.json").read_text())
    rp = cfg.get("rope_parameters") or {}
    if "rope_theta" in cfg or not rp:
        return {}
    if "rope_theta" in rp:
        return {"rope_theta": rp["rope_theta"]}
    out = {}
    if "rope_theta" in rp.get("full_attention", {}):
        out["rope_theta"] = rp["full_attention"]["rope_theta"]
    if "rope_theta" in rp.get("sliding_attention", {}):
        out["rope_local_base_freq"] = rp["sliding_attention"]["rope_theta"]
    return out


class MLXGenerator:
    """One student on mlx-lm: the base model, an mlx-lm LoRA adapter (train --backend mlx), a peft LoRA adapter
    (train on hf or unsloth: merged in float32 as the transformers path merges it, into a temporary folder mlx-lm
    reads) or a fully fine-tuned folder (train --full); `generate` returns generate_batch's dict."""

    def __init__(self, student: str, adapter: str | None) -> None:
        try:
            from mlx_lm.tuner.utils import load_adapters
            from mlx_lm.utils import load_model
        except ImportError:
            raise MissingExtraError("mlx-lm", "mlx") from None
        import mlx.core as mx

        kind = trained_kind(adapter) if adapter else None
        path = Path(adapter) if kind == "full" else Path(resolve_model_path(load_preset(student).model))
        if kind == "lora":
            with tempfile.TemporaryDirectory(prefix="tracestyle-mlx-") as tmp:
                merged, _ = load_for_generation(student, adapter, "cpu", "float32")
                merged.save_pretrained(tmp)      # config.json + model.safetensors: what mlx-lm's loader reads
                del merged
                self.model, _ = load_model(Path(tmp), model_config=rope_overrides(Path(tmp)))
        else:
            self.model, _ = load_model(path, model_config=rope_overrides(path))
            if kind == "mlx_lora":
                self.model = load_adapters(self.model, adapter)
        self.model.eval()
        if mx.default_device() == mx.cpu:
            # float32 on a CPU, as the transformers and CTranslate2 paths use there: bfloat16 (the checkpoint's
            # dtype, mlx's default) changes greedy outputs from the first tokens on
            self.model.set_dtype(mx.float32)
        self.tok = load_tokenizer(student)
        self.watch = LoopWatch(self.tok)

    def generate(self, questions: list[str], dec: Decoding) -> dict:
        import mlx.core as mx
        from mlx_lm.generate import generate_step
        from mlx_lm.sample_utils import make_sampler

        fmt = dec.fmt
        stops = set(stop_ids(self.tok, fmt)) | ({self.tok.pad_token_id} if self.tok.pad_token_id is not None else set())
        stop_text = None if uses_chat(self.tok, fmt) else PLAIN_STOP
        watch = self.watch if dec.temperature <= 0 else None
        sampler = make_sampler(temp=dec.temperature, top_p=dec.top_p if dec.top_p < 1 else 0.0)
        t0, rows = time.time(), []
        for q in questions:
            ids = self.tok(build_prompt(self.tok, q, fmt), add_special_tokens=False)["input_ids"]
            for _ in range(dec.n):
                out: list[int] = []
                how = "limit"
                for token, _ in generate_step(mx.array(ids), self.model, max_tokens=dec.max_new_tokens, sampler=sampler):
                    out.append(int(token))
                    how = ended(self.tok, out, stops=stops, stop_text=stop_text, watch=watch,
                                max_new_tokens=dec.max_new_tokens) or ""
                    if how:
                        break
                rows.append((out, how or "limit"))
        return rows_result(self.tok, rows, fmt=fmt, max_new_tokens=dec.max_new_tokens, seconds=time.time() - t0)


def generate_mlx(student: str, adapter: str | None, questions: list[str], *, max_new_tokens: int,
                 temperature: float, fmt: str = "chat") -> list[str]:
    """Texts only (kept for callers of the earlier interface)."""
    return MLXGenerator(student, adapter).generate(questions, Decoding(max_new_tokens, temperature, fmt=fmt))["texts"]
