"""Backends that cannot run here (no GPU, no Apple silicon): their config translation and import guards."""

import sys

import pytest

from tracestyle.distill.config import config_from_preset
from tracestyle.distill.sft_mlx import mlx_config, mlx_dataset
from tracestyle.distill.sft_unsloth import unsloth_args
from tracestyle.errors import InputError, MissingExtraError


def test_presets_have_per_size_defaults():
    small, big = config_from_preset("smollm2-135m"), config_from_preset("qwen2.5-7b-instruct")
    assert small.lr > big.lr and small.dtype == "float32" and big.dtype == "bfloat16"
    assert config_from_preset("qwen2.5-3b", max_steps=5).max_steps == 5
    with pytest.raises(InputError, match="unknown student"):
        config_from_preset("gpt-99")
    with pytest.raises(InputError, match="lr"):
        config_from_preset("smollm2-135m", lr=-1.0)


def test_unsloth_translation():
    cfg = config_from_preset("qwen2.5-0.5b", max_steps=10, seed=3)
    a = unsloth_args(cfg, "Qwen/Qwen2.5-0.5B", "/tmp/x")
    assert a["peft"]["r"] == cfg.lora_r and a["peft"]["random_state"] == 3
    assert a["sft"]["max_steps"] == 10 and a["sft"]["completion_only_loss"] is True
    assert a["sft"]["gradient_accumulation_steps"] == cfg.grad_accum


def test_mlx_translation():
    cfg = config_from_preset("smollm2-135m", epochs=2, batch_size=4)
    cfg.max_steps = None  # epochs decide the iterations
    c = mlx_config(cfg, "/m", "/d", "/o", n_rows=10)
    assert c["iters"] == 6 and c["mask_prompt"] is True and c["lora_parameters"]["rank"] == cfg.lora_r
    assert "self_attn.q_proj" in c["lora_parameters"]["keys"] and "mlp.up_proj" in c["lora_parameters"]["keys"]
    # accumulation: mlx-lm counts micro-batches, so the same optimizer steps as the hf backend take ga× iterations
    cfg.grad_accum, cfg.max_steps, cfg.eval_every = 4, 5, 2
    c = mlx_config(cfg, "/m", "/d", "/o", n_rows=10)
    assert c["iters"] == 20 == cfg.total_steps(10) * 4 and c["steps_per_eval"] == 8
    assert mlx_config(cfg, "/m", "/d", "/o", n_rows=10, n_heldout=9)["val_batches"] == 3   # the whole valid file
    micro = [{"step": i, "loss": float(i)} for i in range(1, 9)] + [{"step": 8, "eval_loss": 0.5}]
    from tracestyle.distill.sft_mlx import per_optimizer_step
    assert per_optimizer_step(micro, 4) == [{"step": 1, "loss": 2.5}, {"step": 2, "loss": 6.5, "eval_loss": 0.5}]
    ds = mlx_dataset([{"question": "q", "text": "t"}])
    assert [m["role"] for m in ds[0]["messages"]] == ["system", "user", "assistant"]
    plain = mlx_dataset([{"question": "q", "text": "t"}], "plain")
    assert plain == [{"prompt": "Question: q\nAnswer:", "completion": " t"}]


def test_one_prompt_builder_for_every_backend():
    """hf training and evaluation, vllm and mlx all build the student's prompt with the same function."""
    import inspect

    from tracestyle.distill import eval_mlx, eval_vllm, examples, generation, sft_unsloth
    for mod in (eval_mlx, eval_vllm, generation, sft_unsloth):
        assert "build_prompt(" in inspect.getsource(mod), mod.__name__
    assert "apply_chat_template" not in inspect.getsource(eval_vllm)

    class NoTemplate:
        chat_template = None
    assert examples.build_prompt(NoTemplate(), "2+2?", "chat") == examples.build_prompt(NoTemplate(), "2+2?", "plain")


def test_import_guards_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    from tracestyle.curate.teachers.vllm import generate_vllm
    with pytest.raises(MissingExtraError, match=r"tracestyle\[vllm\]"):
        generate_vllm("m", [[{"role": "user", "content": "x"}]])
    monkeypatch.setitem(sys.modules, "mlx_lm", None)
    from tracestyle.distill.sft_mlx import train_mlx
    with pytest.raises(MissingExtraError, match=r"tracestyle\[mlx\]"):
        train_mlx([{"question": "q", "text": "t"}], config_from_preset("smollm2-135m"), "/tmp/none")
    from tracestyle.distill.eval_mlx import generate_mlx
    with pytest.raises(MissingExtraError, match=r"tracestyle\[mlx\]"):
        generate_mlx("smollm2-135m", None, ["q"], max_new_tokens=4, temperature=0.0)
    import torch

    from tracestyle.distill.sft_unsloth import train_unsloth
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="needs a CUDA GPU") as e:
        train_unsloth([], config_from_preset("smollm2-135m"), "/tmp/none")
    assert not isinstance(e.value, MissingExtraError)
    # with a GPU but without the package: the extra is named
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "unsloth", None)
    with pytest.raises(MissingExtraError, match=r"tracestyle\[unsloth\]"):
        train_unsloth([], config_from_preset("smollm2-135m"), "/tmp/none")


@pytest.mark.slow
def test_mlx_trains_and_evaluates_for_real(tmp_path):
    """mlx-lm on the CPU (mlx[cpu] on Linux): LoRA steps on the bundled model, then evaluation through mlx with
    the trained adapter; the base model's greedy outputs under mlx match transformers' on the same prompts."""
    pytest.importorskip("mlx_lm", reason="mlx-lm not installed (make setup-test)")
    import json

    from conftest import run_cli

    def ok(r):
        assert r.returncode == 0, r.stderr[-2000:]

    ok(run_cli("problems", "--task", "kg", "--split", "train", "--n", "8", "--out", str(tmp_path / "p.jsonl")))
    ok(run_cli("problems", "--task", "kg", "--split", "eval", "--n", "2", "--out", str(tmp_path / "e.jsonl")))
    ok(run_cli("generate", "--problems", str(tmp_path / "p.jsonl"), "--registers", "normal", "--out", str(tmp_path / "g")))
    ok(run_cli("train", "--data", str(tmp_path / "g" / "traces.jsonl"), "--backend", "mlx", "--steps", "2",
               "--batch-size", "2", "--max-length", "256", "--out", str(tmp_path / "a")))
    assert (tmp_path / "a" / "adapters.safetensors").exists()
    metrics = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert len(losses) == 2 and all(0 < x < 20 for x in losses), metrics
    man = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert man["counts"]["device"].startswith("mlx") and man["counts"]["examples"] == 6
    ok(run_cli("eval", "--adapter", str(tmp_path / "a"), "--backend", "mlx", "--problems", str(tmp_path / "e.jsonl"),
               "--max-new-tokens", "12", "--out", str(tmp_path / "ev")))
    rows = [json.loads(x) for x in (tmp_path / "ev" / "eval.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["output"].strip() and isinstance(r["correct"], bool) for r in rows)
    outs = {}
    for backend in ("mlx", "hf"):
        ok(run_cli("eval", "--student", "smollm2-135m", "--backend", backend, "--problems", str(tmp_path / "e.jsonl"),
                   "--max-new-tokens", "12", "--out", str(tmp_path / f"base-{backend}")))
        outs[backend] = [json.loads(x)["output"] for x in
                         (tmp_path / f"base-{backend}" / "eval.jsonl").read_text().splitlines()]
    # the same weights, RoPE base and prompt in float32: greedy outputs agree (identical here; a float difference
    # could flip a late token on another CPU, so the starts are compared)
    assert [o[:40] for o in outs["mlx"]] == [o[:40] for o in outs["hf"]], outs
