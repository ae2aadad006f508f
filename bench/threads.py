"""Torch threads for training and evaluation, measured: one LoRA training step (4 x 300 tokens) and one greedy
evaluation batch (32 KG prompts x 48 new tokens) of the bundled SmolLM2-135M at 1 thread and at every core, in the
precision `auto` picks here. The trainer and the evaluation use every core (torch's default); this says whether
that is right on this CPU. Prints JSON with the CPU and its bf16 flags.

Usage: bench/threads.py
"""

from __future__ import annotations

import json
import os
import time


def main() -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from tracestyle.distill.generation import Decoding, generate_batch, load_for_generation
    from tracestyle.distill.models import load_model
    from tracestyle.distill.sft_hf import autocast
    from tracestyle.precision import cpu_facts, resolve_precision
    from tracestyle.tasks.kg.questions import generate_kg_problems

    prec = resolve_precision("auto", "cpu")
    res: dict = {"cpu": cpu_facts(), "precision": prec}
    model = load_model("smollm2-135m", prec, "cpu")
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                             task_type="CAUSAL_LM"))
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(100, 20000, (4, 300), generator=torch.Generator().manual_seed(0))
    gen_model, tok = load_for_generation("smollm2-135m", None, "cpu", prec)
    qs = [p["question"] for p in generate_kg_problems("devops", "eval", 32, 3)]
    for n in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(n)

        def step():
            with autocast("cpu", prec):
                out = model(input_ids=ids, labels=ids)
            out.loss.backward()
            opt.step()
            opt.zero_grad()

        step()
        t0 = time.perf_counter()
        for _ in range(2):
            step()
        res[f"train_seconds_per_step_{n}_threads"] = round((time.perf_counter() - t0) / 2, 3)
        g = generate_batch(gen_model, tok, qs, Decoding(48))
        res[f"eval_tokens_per_s_{n}_threads"] = round(sum(g["tokens"]) / g["seconds"], 1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
