"""SFT throughput and peak RSS: `tracestyle train` (hf backend) vs TRL's SFTTrainer on the same model, data,
sequence length, batch and LoRA settings, each in its own process, in float32 and in bfloat16 (ours: bf16 autocast
over float32 LoRA weights and a bf16 frozen base; TRL: its `bf16=True`, autocast over float32 weights). Prints JSON
with the CPU and its bf16 flags."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

STEPS, BATCH, SEQ = 8, 8, 256
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
LORA = {"r": 16, "alpha": 32, "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


def make_data(path: Path) -> None:
    from tracestyle.curate.teachers.template import template_trace
    from tracestyle.jsonl import write_jsonl
    from tracestyle.prompts import load_registers
    from tracestyle.tasks.kg.questions import generate_kg_problems

    reg = load_registers(["gold"])["gold"]
    probs = generate_kg_problems("devops", "train", STEPS * BATCH, 11)
    write_jsonl(path, [{"problem_id": p["id"], "question": p["question"], "text": template_trace(p, reg)}
                       for p in probs])


def count_tokens(rows, tok) -> int:
    from tracestyle.distill.examples import encode_example
    return sum(len(e["input_ids"]) for e in (encode_example(tok, r["question"], r["text"], SEQ) for r in rows) if e)


def run_ours(data: Path, out: Path, prec: str) -> dict:
    from tracestyle.distill.config import config_from_preset
    from tracestyle.distill.sft_hf import train_hf
    from tracestyle.jsonl import read_jsonl

    rows = read_jsonl(data)
    cfg = config_from_preset("smollm2-135m", max_steps=STEPS, batch_size=BATCH, max_length=SEQ, lora_r=LORA["r"],
                             lora_alpha=LORA["alpha"], lora_targets=LORA["targets"], eval_fraction=0.0,
                             save_every=10_000, eval_every=10_000, dtype=prec)
    res = train_hf(rows, cfg, out)
    from tracestyle.distill.models import load_tokenizer
    return {"seconds": res["seconds"], "tokens": count_tokens(rows, load_tokenizer("smollm2-135m"))}


def run_trl(data: Path, out: Path, prec: str, micro: int = BATCH) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from tracestyle.distill.examples import build_prompt, end_text
    from tracestyle.distill.models import load_model, load_tokenizer
    from tracestyle.jsonl import read_jsonl

    torch.set_num_threads(os.cpu_count() or 1)
    rows = read_jsonl(data)
    tok = load_tokenizer("smollm2-135m")
    model = load_model("smollm2-135m", "float32")
    ds = Dataset.from_list([{"prompt": build_prompt(tok, r["question"]), "completion": r["text"] + end_text(tok)}
                            for r in rows])
    args = SFTConfig(output_dir=str(out), per_device_train_batch_size=micro, gradient_accumulation_steps=BATCH // micro,
                     max_steps=STEPS, max_length=SEQ,
                     learning_rate=1e-3, logging_steps=1, report_to="none", bf16=prec == "bfloat16", fp16=False,
                     gradient_checkpointing=False, completion_only_loss=True, packing=False, save_strategy="no",
                     dataloader_num_workers=0, use_cpu=True, seed=0)
    lcfg = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], target_modules=LORA["targets"], task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=lcfg)
    t0 = time.time()
    trainer.train()
    return {"seconds": time.time() - t0, "tokens": count_tokens(rows, tok)}


def child(which: str, prec: str, data: str, out: str) -> None:
    if which == "ours":
        res = run_ours(Path(data), Path(out), prec)
    else:  # "trl": batch 8 as configured; "trl_micro": 4 micro-batches of 2, as our trainer splits these sequences
        res = run_trl(Path(data), Path(out), prec, BATCH if which == "trl" else 2)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(res))


def run_child(which: str, prec: str, data: Path, out: Path) -> dict:
    r = subprocess.run([sys.executable, __file__, "child", which, prec, str(data), str(out)],
                       capture_output=True, text=True, env={**os.environ, "TRACESTYLE_QUIET": "1"})
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise SystemExit(f"{which} failed:\n{r.stderr[-2000:]}")
    res = json.loads(line[0][7:])
    res["tokens_per_s"] = res["tokens"] / res["seconds"]
    return res


def main() -> None:
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="bench-sft-"))
    data = tmp / "data.jsonl"
    make_data(data)
    # this VM's CPU time is shared with its neighbours (steal bursts halve a run's speed now and then): the
    # trainers take turns for ROUNDS rounds (the order rotates) and each keeps its best run; every run is printed
    from tracestyle.precision import cpu_facts

    out: dict = {"cpu": cpu_facts()}
    for prec in ("float32", "bfloat16"):
        runs: dict[str, list[dict]] = {"trl": [], "ours": [], "trl_micro": []}
        for rnd in range(ROUNDS):
            order = list(runs)[rnd % 3:] + list(runs)[: rnd % 3]
            for which in order:
                res = run_child(which, prec, data, tmp / f"{which}-{prec}-{rnd}")
                runs[which].append(res)
                print(f"{prec} round {rnd + 1} {which}: {res['tokens_per_s']:.1f} tokens/s, peak RSS "
                      f"{res['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
        got = {w: {"tokens_per_s": max(r["tokens_per_s"] for r in rs), "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
                   "runs_tokens_per_s": [round(r["tokens_per_s"], 1) for r in rs], "tokens": rs[0]["tokens"]}
               for w, rs in runs.items()}
        sfx = "" if prec == "float32" else "_bf16"
        for w, v in got.items():
            out[w + sfx] = v
        out["ratio_sft_vs_trl" + sfx] = got["ours"]["tokens_per_s"] / got["trl"]["tokens_per_s"]
        out["rss_ratio_vs_trl" + sfx] = got["ours"]["peak_rss_mb"] / got["trl"]["peak_rss_mb"]
        # the same optimizer batch, with TRL also given our micro-batching: what remains is the trainer itself
        out["ratio_sft_vs_trl_micro" + sfx] = got["ours"]["tokens_per_s"] / got["trl_micro"]["tokens_per_s"]
        out["rss_ratio_vs_trl_micro" + sfx] = got["ours"]["peak_rss_mb"] / got["trl_micro"]["peak_rss_mb"]
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(*sys.argv[2:6])
    else:
        main()
