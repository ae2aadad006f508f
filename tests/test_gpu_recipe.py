"""The GPU recipe checked on a CPU: `grid --dry-run` plans and blockers, memory-sized micro-batches and gradient
checkpointing, and the research grid run end to end on tiny random-init students of the same architectures."""

import csv
import re

import pytest
import yaml

from conftest import ROOT, run_cli

GPU_GRID = ROOT / "examples" / "gpu_grid.yaml"


def test_dry_run_plans_every_student_and_names_no_cuda(tmp_path):
    r = run_cli("grid", str(GPU_GRID), "--dry-run")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("blocker:")] == \
        ["blocker: no CUDA device: the spec asks for device: cuda, and torch sees no GPU here"]
    cells = [re.split(r"\s{2,}", ln.strip()) for ln in r.stdout.splitlines()[1:]]
    head = cells[0]
    rows = {(c[0], c[1]): dict(zip(head, c)) for c in cells[1:]}
    for st in ("qwen2.5-0.5b", "qwen2.5-3b", "qwen2.5-7b"):
        train, ev = rows[(st, "train")], rows[(st, "eval")]
        assert train["precision"] == "bfloat16" and train["weights"] == "LoRA r64" and train["device"] == "cuda"
        # eval needs less than training; everything fits the spec's 80 GB
        assert 0 < float(ev["peak GiB"]) < float(train["peak GiB"]) < 80
    sizes = [float(rows[(st, "train")]["peak GiB"]) for st in ("qwen2.5-0.5b", "qwen2.5-3b", "qwen2.5-7b")]
    # a bigger model keeps its peak under the GPU by taking smaller micro-batches
    micro = [int(rows[(st, "train")]["micro-batch"].split()[0]) for st in ("qwen2.5-0.5b", "qwen2.5-3b", "qwen2.5-7b")]
    assert micro[0] > micro[1] > micro[2] and max(sizes) <= 0.9 * 80


def test_dry_run_names_each_blocker(tmp_path):
    spec = yaml.safe_load(GPU_GRID.read_text())
    spec.update(students=["qwen2.5-7b"], full=True, gpu_memory_gb=40, train_backend="unsloth", executor="ray")
    p = tmp_path / "g.yaml"
    p.write_text(yaml.safe_dump(spec))
    r = run_cli("grid", str(p), "--dry-run")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    blockers = [ln for ln in r.stderr.splitlines() if ln.startswith("blocker:")]
    assert any("no CUDA device" in b for b in blockers)
    assert any("'unsloth' is not installed" in b or "package 'unsloth'" in b for b in blockers)
    # full fine-tuning of 7.6B parameters: ~16 bytes each before activations, far over 40 GB
    assert any(b.startswith("blocker: qwen2.5-7b train: needs ~") and "40 GiB" in b for b in blockers), blockers
    spec.update(device="cpu", full=False, train_backend="hf", executor="local", students=["smollm2-135m"])
    p.write_text(yaml.safe_dump(spec))
    r = run_cli("grid", str(p), "--dry-run")
    assert r.returncode == 0 and "no blockers found" in r.stdout, r.stderr


def test_micro_batches_and_checkpointing_follow_memory():
    from tracestyle.distill.memory import GIB, LORA_MATRICES, micro_budget_for, train_bytes
    from tracestyle.distill.models import load_preset

    arch = load_preset("qwen2.5-7b").architecture
    kw = dict(lora=True, r=64, targets=list(LORA_MATRICES), precision="bfloat16", max_length=1024, batch_tokens=4096)
    assert micro_budget_for(arch, 80 * GIB, **kw) == (4096, False)
    assert micro_budget_for(arch, 30 * GIB, **kw) == (2048, False)     # fewer sequences per micro-batch
    assert micro_budget_for(arch, 21 * GIB, **kw) == (1024, True)      # only checkpointing makes room
    assert micro_budget_for(arch, 16 * GIB, **kw) is None              # the bf16 weights alone are ~14 GiB
    full = train_bytes(arch, lora=False, r=0, targets=[], precision="bfloat16", micro_tokens=1024)
    assert full["weights"] + full["optimizer"] >= 18 * 7.6e9     # fp32 master + Adam + the bf16 working copy


def test_checkpointing_gives_the_same_gradients_on_a_tiny_qwen2():
    import torch

    from tracestyle.distill.config import config_from_preset
    from tracestyle.distill.sft_hf import autocast, build_model, completion_loss

    cfg = config_from_preset("tiny:qwen2.5-7b", dtype="float32")
    grads = []
    for ckpt in (False, True):
        model = build_model(cfg, "cpu")
        if ckpt:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        ids = torch.randint(5, 4000, (2, 24), generator=torch.Generator().manual_seed(1))
        labels = ids.clone()
        labels[:, :8] = -100
        with autocast("cpu", "float32"):
            loss, _ = completion_loss(model, ids, labels, torch.ones_like(ids))
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-6), n


@pytest.mark.slow
def test_the_research_grid_runs_end_to_end_on_tiny_random_students_in_bf16(tmp_path):
    spec = yaml.safe_load(GPU_GRID.read_text())
    # the same spec, a CPU and tiny random-init students of the same architectures; the template teacher stands in
    # for the vLLM server (the openai teacher runs against a real server in test_grid_axes.py)
    spec.update(students=["tiny:qwen2.5-0.5b", "tiny:qwen2.5-7b"], device="cpu", precision="bfloat16",
                teacher="template", train_n=8, eval_n=4, seeds=[0], registers=["normal", "titanium"],
                token_budget="none", steps=2, batch_size=2, eval_max_new_tokens=8, eval_batch_size=4, nll_sample=2)
    for k in ("gpu_memory_gb", "gpu_tflops"):
        spec.pop(k)
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(spec))
    r = run_cli("grid", str(p), "--dry-run")
    assert r.returncode == 0, r.stderr
    r = run_cli("grid", str(p), "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "run" / "results.csv")))
    assert {(x["student"], x["register"]) for x in rows} == {
        (s, c) for s in ("tiny:qwen2.5-0.5b", "tiny:qwen2.5-7b") for c in ("base", "normal", "titanium")}
    assert {x["precision"] for x in rows} == {"bfloat16"} and all(int(x["n"]) == 4 for x in rows)
