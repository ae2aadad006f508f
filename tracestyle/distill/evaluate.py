"""Evaluation: batched generation on a problem set, scored by the curate verifiers; resumable per batch."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from tracestyle.distill import engine_ct2
from tracestyle.distill.config import EvalConfig, config_from_preset
from tracestyle.distill.engine_choice import choose as choose_engine
from tracestyle.distill.engine_ct2 import CT2Generator
from tracestyle.distill.eval_mlx import MLXGenerator
from tracestyle.distill.eval_vllm import ROWS_PER_CALL, VLLMGenerator
from tracestyle.distill.generation import Decoding, generate_batch, load_for_generation, trained_kind, weights_file
from tracestyle.distill.loops import LoopWatch
from tracestyle.distill.sft_hf import pick_device
from tracestyle.errors import InputError, MissingExtraError
from tracestyle.jsonl import AppendLog, read_jsonl, strip_meta, write_json, write_jsonl
from tracestyle.manifest import is_complete, write_manifest
from tracestyle.precision import normalise, resolve_precision, thread_budget
from tracestyle.tasks import point_at, score, task_of


def load_problems(path: str | Path, *, kg: str | None = None) -> list[dict]:
    """Problems to evaluate on: unique ids, string questions, and every one scorable (its KG resolves);
    `kg` (--kg) points KG problems at that KG."""
    rows = read_jsonl(path, required=("id", "question", "gold"))
    seen = set()
    for r in rows:
        if r["id"] in seen:
            raise InputError(f"duplicate id '{r['id']}'", str(path), r["__line__"], "id")
        seen.add(r["id"])
        if not isinstance(r["question"], str):
            raise InputError("expected a string", str(path), r["__line__"], "question")
        r.setdefault("task", "gsm8k")
    if kg:
        rows = point_at(rows, kg)
    for r in rows:
        task_of(r).prepare([r], where=str(path))
    return [strip_meta(r) for r in rows]


def prompt_format_for(student: str, adapter: str | None) -> str:
    """Evaluate in the format the weights were trained with (train_config.json), else the preset's."""

    tc = Path(adapter) / "train_config.json" if adapter else None
    if tc is not None and tc.exists():
        return json.loads(tc.read_text()).get("prompt_format", "chat")
    return config_from_preset(student).prompt_format


def resolve_backend(student: str, ev: EvalConfig, device: str, precision: str, *, questions: list[str],
                    fmt: str) -> tuple[str, dict]:
    """(engine, why) for `auto`: mlx for an mlx-lm adapter; on a GPU transformers; on a CPU the engine measured
    fastest here for this precision (distill/engine_choice.py)."""
    backend, adapter = ev.backend, ev.adapter
    if backend != "auto":
        if backend == "ct2" and not engine_ct2.available():
            raise MissingExtraError("ctranslate2", "fast")
        if backend == "ct2" and precision != "float32":
            raise InputError("CTranslate2 runs float32 only on a CPU: pass --precision float32 (or another backend)",
                             field="backend")
        return backend, {"rule": "requested"}
    if adapter and trained_kind(adapter) == "mlx_lora":
        return "mlx", {"rule": "an mlx-lm adapter is read by mlx alone"}
    if device != "cpu":
        return "hf", {"rule": f"transformers on {device}"}
    return choose_engine(student, adapter, precision, questions, fmt=fmt, batch_size=ev.batch_size,
                         max_new_tokens=ev.max_new_tokens)


def run_eval(student: str, problems_path: str | Path, out_dir: str | Path, ev: EvalConfig | None = None, *,
             progress=None) -> dict:
    """Generate on every problem (batched, resumable per batch) and score each output with `score()`.
    `ev.adapter`: a LoRA adapter or a fully fine-tuned model folder (train --full). `ev.backend`: auto (below),
    hf, ct2, vllm or mlx."""
    ev = ev or EvalConfig()
    adapter, batch_size, max_new_tokens, temperature = ev.adapter, ev.batch_size, ev.max_new_tokens, ev.temperature
    device, limit, fmt, kg = ev.device, ev.limit, ev.fmt, ev.kg
    t0 = time.time()
    out = Path(out_dir)
    fmt = fmt or prompt_format_for(student, adapter)
    problems = load_problems(problems_path, kg=kg)[:limit]
    dev = pick_device(device)
    precision = resolve_precision(ev.precision, dev)
    mlx = ev.backend == "mlx" or ev.backend == "auto" and adapter and trained_kind(adapter) == "mlx_lora"
    if normalise(ev.precision) == "auto" and (ev.backend == "ct2" or mlx and dev == "cpu"):
        precision = "float32"    # what these engines compute in on a CPU; an explicit bfloat16 is refused below
    # the requested backend keys the manifest: `auto` may pick another engine once a conversion is cached, and the
    # engines give the same rows (tests/test_eval_engine.py); the precision changes outputs, so it keys it too
    cfg = {"student": student, "adapter": adapter, "batch_size": batch_size, "max_new_tokens": max_new_tokens,
           "temperature": temperature, "backend": ev.backend, "precision": precision, "limit": limit, "format": fmt,
           "kg": kg}
    inputs = [problems_path] + ([weights_file(adapter)] if adapter else [])
    if is_complete(out, cfg, inputs):
        return {"skipped": True, **_read_summary(out)}
    out.mkdir(parents=True, exist_ok=True)
    partial = AppendLog(out / "eval.partial.jsonl")
    # rows an interrupted run wrote in another precision are redone (the later row wins when read back)
    done = {r["problem_id"]: r for r in partial.rows if r.get("precision", precision) == precision}
    todo = [p for p in problems if p["id"] not in done]
    gen_tokens, gen_secs, loops_stopped = 0, 0.0, 0
    backend, why = ev.backend, {"rule": "every row came from the interrupted run's log"}
    if todo:
        if progress:
            progress(0, len(todo))     # the bar's clock starts before the model loads, not after the first batch
        backend, why = resolve_backend(student, ev, dev, precision, questions=[p["question"] for p in todo], fmt=fmt)
        dec = Decoding(max_new_tokens, temperature, fmt=fmt)
        if backend == "mlx":
            engine = MLXGenerator(student, adapter)
            tok, step = engine.tok, batch_size

            def gen_fn(qs):
                return engine.generate(qs, dec)
        elif backend == "vllm":
            engine = VLLMGenerator(student, adapter, precision)
            tok = engine.tok
            # vLLM batches internally: one start per call, so a call takes several batches (resumable per call)
            step = max(batch_size, ROWS_PER_CALL)

            def gen_fn(qs):
                return engine.generate(qs, dec)
        elif backend == "ct2":
            engine = CT2Generator(student, adapter)
            tok = engine.tok
            step = batch_size   # one call per batch: the partial log, the resume point, grows per batch

            def gen_fn(qs):
                return engine.generate(qs, dec, batch_size=min(batch_size, engine_ct2.BEST_BATCH))
        else:
            model, tok = load_for_generation(student, adapter, dev, precision)
            step = batch_size
            watch = LoopWatch(tok)

            def gen_fn(qs):
                return generate_batch(model, tok, qs, dec, watch=watch)
        # batches of similar prompt lengths in tokens: less padding (transformers) and fewer prompt tokens fed
        # one step at a time (CTranslate2 runs only a batch's shortest prompt in one pass)
        todo.sort(key=lambda p: (len(tok(p["question"], add_special_tokens=False)["input_ids"]), str(p["id"])))
        for s in range(0, len(todo), step):
            batch = todo[s: s + step]
            g = gen_fn([p["question"] for p in batch])
            loops_stopped += g.get("loops_stopped", 0)
            gen_tokens += sum(g["tokens"])
            gen_secs += g["seconds"]
            for p, t, n, cut in zip(batch, g["texts"], g["tokens"], g["truncated"]):
                partial.append({"problem_id": p["id"], "output": t, "tokens": n, "truncated": cut,
                                "precision": precision})
            if progress:
                progress(min(s + step, len(todo)), len(todo))
    partial.close()
    by_id = {r["problem_id"]: r for r in AppendLog(out / "eval.partial.jsonl").rows}
    rows = []
    for p in problems:
        g = by_id[p["id"]]
        rows.append({"problem_id": p["id"], "task": p.get("task"), "split": p.get("split"),
                     "difficulty": p.get("difficulty", {}), "gold": p["gold"], "output": g["output"],
                     "tokens": g["tokens"], "truncated": g.get("truncated"),
                     **score(p, g["output"], truncated=g.get("truncated"))})
    n = len(rows)
    acc = sum(r["correct"] for r in rows) / max(1, n)
    summary = {"student": student, "adapter": adapter, "n": n, "correct": sum(r["correct"] for r in rows),
               "accuracy": acc, "verdicts": dict(Counter(r["verdict"] for r in rows)),
               "gen_tokens": gen_tokens, "gen_seconds": round(gen_secs, 2),
               "tokens_per_s": round(gen_tokens / gen_secs, 2) if gen_secs else None, "batch_size": batch_size,
               "backend": backend, "engine_choice": why, "precision": precision, "loops_stopped": loops_stopped,
               # bf16 rows, and LoRA training, round differently at another thread count (README: jobs side by side)
               "threads": thread_budget()}
    if any("path_valid" in r for r in rows):
        summary["path_valid_rate"] = sum(bool(r.get("path_valid")) for r in rows) / max(1, n)
    write_jsonl(out / "eval.jsonl", rows)
    write_json(out / "summary.json", summary)
    write_manifest(out, "eval", cfg, inputs, {"n": n, "correct": summary["correct"]}, started=t0)
    (out / "eval.partial.jsonl").unlink(missing_ok=True)
    return {"skipped": False, **summary}


def _read_summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())
