"""Evaluation: batched generation on a problem set, scored by the curate verifiers; resumable per batch."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from tracestyle.curate.extract import verify_answer
from tracestyle.curate.kg_path import verify_kg_path
from tracestyle.curate.kg_questions import cached_kg
from tracestyle.errors import InputError
from tracestyle.jsonl import AppendLog, read_jsonl, strip_meta, write_json, write_jsonl
from tracestyle.manifest import is_complete, write_manifest


def score(problem: dict, text: str) -> dict:
    v = verify_answer(text, problem)
    row = {"extracted": v.extracted, "correct": bool(v.ok), "verdict": v.reason,
           "extractor": v.details.get("extractor")}
    if problem.get("task") == "kg":
        kg = cached_kg(problem.get("domain"))
        pv = verify_kg_path(text, problem, kg)
        row["path_valid"] = pv.ok
        row["path"] = {"reason": pv.reason, **pv.details}
    return row


def load_problems(path: str | Path) -> list[dict]:
    rows = read_jsonl(path, required=("id", "question", "gold"))
    seen = set()
    for r in rows:
        if r["id"] in seen:
            raise InputError(f"duplicate id '{r['id']}'", str(path), r["__line__"], "id")
        seen.add(r["id"])
        if not isinstance(r["question"], str):
            raise InputError("expected a string", str(path), r["__line__"], "question")
        r.setdefault("task", "gsm8k")
    return [strip_meta(r) for r in rows]


def run_eval(student: str, problems_path: str | Path, out_dir: str | Path, adapter: str | None = None,
             batch_size: int = 16, max_new_tokens: int = 256, temperature: float = 0.0, device: str = "auto",
             backend: str = "hf", limit: int | None = None, progress=None, fmt: str = "chat") -> dict:
    from tracestyle.distill.sft_hf import pick_device

    t0 = time.time()
    out = Path(out_dir)
    cfg = {"student": student, "adapter": adapter, "batch_size": batch_size, "max_new_tokens": max_new_tokens,
           "temperature": temperature, "backend": backend, "limit": limit, "format": fmt}
    inputs = [problems_path] + ([Path(adapter) / "adapter_model.safetensors"] if adapter else [])
    if adapter and not (Path(adapter) / "adapter_config.json").exists():
        raise InputError("no adapter_config.json in the adapter folder", str(adapter))
    if is_complete(out, cfg, inputs):
        return {"skipped": True, **_read_summary(out)}
    problems = load_problems(problems_path)[:limit]
    out.mkdir(parents=True, exist_ok=True)
    partial = AppendLog(out / "eval.partial.jsonl")
    done = {r["problem_id"]: r for r in partial.rows}
    todo = [p for p in problems if p["id"] not in done]
    gen_tokens, gen_secs = 0, 0.0
    if todo:
        if backend in ("vllm", "mlx"):
            if backend == "vllm":
                from tracestyle.distill.eval_vllm import generate_vllm_lora as gen
            else:
                from tracestyle.distill.eval_mlx import generate_mlx as gen
            from tracestyle.distill.models import load_tokenizer
            texts = gen(student, adapter, [p["question"] for p in todo], max_new_tokens, temperature)
            tok = load_tokenizer(student)
            for p, t in zip(todo, texts):
                partial.append({"problem_id": p["id"], "output": t,
                                "tokens": len(tok(t, add_special_tokens=False)["input_ids"])})
        else:
            from tracestyle.distill.generation import generate_batch, load_for_generation
            model, tok = load_for_generation(student, adapter, pick_device(device))
            todo.sort(key=lambda p: len(p["question"]))  # similar lengths per batch: less padding
            for s in range(0, len(todo), batch_size):
                batch = todo[s: s + batch_size]
                g = generate_batch(model, tok, [p["question"] for p in batch], max_new_tokens, temperature, fmt=fmt)
                gen_tokens += sum(g["tokens"])
                gen_secs += g["seconds"]
                for p, t, n in zip(batch, g["texts"], g["tokens"]):
                    partial.append({"problem_id": p["id"], "output": t, "tokens": n})
                if progress:
                    progress(min(s + batch_size, len(todo)), len(todo))
    partial.close()
    by_id = {r["problem_id"]: r for r in AppendLog(out / "eval.partial.jsonl").rows}
    rows = []
    for p in problems:
        g = by_id[p["id"]]
        rows.append({"problem_id": p["id"], "task": p.get("task"), "split": p.get("split"),
                     "difficulty": p.get("difficulty", {}), "gold": p["gold"], "output": g["output"],
                     "tokens": g["tokens"], **score(p, g["output"])})
    n = len(rows)
    acc = sum(r["correct"] for r in rows) / max(1, n)
    summary = {"student": student, "adapter": adapter, "n": n, "correct": sum(r["correct"] for r in rows),
               "accuracy": acc, "verdicts": dict(Counter(r["verdict"] for r in rows)),
               "gen_tokens": gen_tokens, "gen_seconds": round(gen_secs, 2),
               "tokens_per_s": round(gen_tokens / gen_secs, 2) if gen_secs else None, "batch_size": batch_size}
    if any("path_valid" in r for r in rows):
        summary["path_valid_rate"] = sum(bool(r.get("path_valid")) for r in rows) / max(1, n)
    write_jsonl(out / "eval.jsonl", rows)
    write_json(out / "summary.json", summary)
    write_manifest(out, "eval", cfg, inputs, {"n": n, "correct": summary["correct"]}, t0)
    (out / "eval.partial.jsonl").unlink(missing_ok=True)
    return {"skipped": False, **summary}


def _read_summary(out: Path) -> dict:
    import json
    return json.loads((out / "summary.json").read_text())
