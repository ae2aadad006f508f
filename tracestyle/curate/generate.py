"""The generate stage: problems x registers x k samples -> traces.jsonl, with provenance on every row."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tracestyle.curate.cost import usage_by_register
from tracestyle.curate.teachers.openai_client import Job, OpenAIConfig, OpenAITeacher
from tracestyle.curate.teachers.template import template_trace
from tracestyle.curate.teachers.vllm import generate_vllm
from tracestyle.errors import InputError
from tracestyle.jsonl import write_jsonl
from tracestyle.manifest import is_complete, write_manifest
from tracestyle.progress import progress_bar
from tracestyle.prompts import Register
from tracestyle.tasks import task_of


def _row(problem: dict, reg: Register, teacher: str, model: str | None, *, sample: int, text: str) -> dict:
    return {
        "problem_id": problem["id"], "task": problem["task"], "register": reg.name,
        "register_version": reg.version, "teacher": teacher, "teacher_model": model, "sample": sample,
        "text": text, "gold": problem["gold"], "question": problem["question"], "split": problem.get("split"),
        "source_index": problem.get("source_index"), "seed": problem.get("seed"),
        "difficulty": problem.get("difficulty", {}), "problem": problem,
    }


@dataclass
class Teacher:
    """Who writes the traces: `kind` template, openai (any OpenAI-compatible server: `openai`) or vllm (offline,
    `vllm_model`); `cache`: the openai response cache (default: inside the output folder); `prices`: per-model
    prices for the cost table."""
    kind: str = "template"
    openai: OpenAIConfig | None = None
    vllm_model: str | None = None
    # the vllm teacher's engine: max_model_len, tensor_parallel_size, gpu_memory_utilization, dtype
    vllm_options: dict | None = None
    cache: str | Path | None = None
    prices: dict | None = None


def generate(problems: list[dict], registers: dict[str, Register], out_dir: str | Path,
             teacher: Teacher | None = None, *, inputs: list[str | Path] = (), quiet: bool = False) -> dict:
    """Write out_dir/traces.jsonl (and failed.jsonl for an LLM teacher); skip when the manifest matches."""
    t = teacher or Teacher()
    teacher, openai_cfg, cache, vllm_model, prices = t.kind, t.openai, t.cache, t.vllm_model, t.prices
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    cfg = {"teacher": teacher, "registers": {n: r.version for n, r in registers.items()},
           "problems": [p["id"] for p in problems], "openai": openai_cfg.public() if openai_cfg else None,
           "vllm_model": vllm_model, "vllm_options": t.vllm_options}
    if is_complete(out, cfg, list(inputs)):
        return {"skipped": True, "rows": None}
    failed: list[dict] = []
    extra: dict = {}
    if teacher == "template":
        rows = []
        with progress_bar("template teacher", len(problems) * len(registers), quiet) as adv:
            for reg in registers.values():
                for p in problems:
                    rows.append(_row(p, reg, "template", None, sample=0, text=template_trace(p, reg)))
                    adv(1)
    elif teacher == "openai":
        ocfg = openai_cfg or OpenAIConfig()
        jobs = [Job(reg.teacher_messages(task_of(p).template_set, p), {"problem_id": p["id"], "register": reg.name})
                for reg in registers.values() for p in problems]
        with progress_bar(f"openai teacher ({ocfg.model})", len(jobs), quiet) as adv:
            tch = OpenAITeacher(ocfg, cache or out / "cache" / "responses.jsonl", progress=adv)
            results, failed = tch.run(jobs)
        by_id = {p["id"]: p for p in problems}
        order = {(reg, p["id"]): i for i, (reg, p) in enumerate((r, p) for r in registers for p in problems)}
        results.sort(key=lambda r: (order[(r["register"], r["problem_id"])], r["sample"]))
        rows = [dict(_row(by_id[r["problem_id"]], registers[r["register"]], "openai", ocfg.model,
                               sample=r["sample"], text=r["text"]), finish_reason=r.get("finish_reason"),
                     usage=r.get("usage")) for r in results]
        st = tch.stats
        extra["usage"] = {"requests": st.requests, "cache_hits": st.cache_hits, "retries": st.retries,
                          "failed": st.failed, "prompt_tokens": st.prompt_tokens,
                          "completion_tokens": st.completion_tokens, "faults": st.faults,
                          "seconds": round(tch.elapsed, 3),
                          "per_register": usage_by_register(rows, prices)}
    elif teacher == "vllm":
        if not vllm_model:
            raise InputError("the vllm teacher needs --model", field="model")
        ocfg = openai_cfg or OpenAIConfig()
        pairs = [(reg, p) for reg in registers.values() for p in problems]
        t1 = time.time()
        with progress_bar(f"vllm teacher ({vllm_model})", 1, quiet) as adv:
            outs = generate_vllm(vllm_model, [reg.teacher_messages(task_of(p).template_set, p) for reg, p in pairs],
                                 k=ocfg.k, temperature=ocfg.temperature, top_p=ocfg.top_p, max_tokens=ocfg.max_tokens,
                                 seed=ocfg.seed, **(t.vllm_options or {}))
            adv(1)
        rows = [dict(_row(p, reg, "vllm", vllm_model, sample=i, text=c["text"]), finish_reason=c["finish_reason"],
                     usage=c["usage"]) for (reg, p), cs in zip(pairs, outs) for i, c in enumerate(cs)]
        extra["usage"] = {"requests": len(pairs), "samples": len(rows),
                          "prompt_tokens": sum(r["usage"]["prompt_tokens"] for r in rows),
                          "completion_tokens": sum(r["usage"]["completion_tokens"] for r in rows),
                          "cut_at_max_tokens": sum(r["finish_reason"] == "length" for r in rows),
                          "seconds": round(time.time() - t1, 3), "per_register": usage_by_register(rows, prices)}
    else:
        raise InputError(f"unknown teacher '{teacher}' (template, openai, vllm)", field="teacher")
    write_jsonl(out / "traces.jsonl", rows)
    write_jsonl(out / "failed.jsonl", failed)
    counts = {"rows": len(rows), "failed": len(failed), "problems": len(problems),
              "per_register": {n: sum(1 for r in rows if r["register"] == n) for n in registers}}
    write_manifest(out, "generate", cfg, list(inputs), counts, started=t0, extra={**extra, "complete": not failed})
    return {"skipped": False, "rows": len(rows), "failed": len(failed), **extra}
