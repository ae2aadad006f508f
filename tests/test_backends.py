"""Backends that cannot run here (no GPU, no Apple silicon): their config translation and import guards."""

import sys

import pytest

from tracestyle.distill.config import config_from_preset
from tracestyle.distill.sft_mlx import mlx_config, mlx_dataset
from tracestyle.distill.sft_unsloth import unsloth_args
from tracestyle.errors import InputError, MissingExtraError


def test_every_preset_names_its_size_and_family():
    """The scale plot orders students by parameter count: 0.5B < 3B < 7B, the bundled ones below."""
    from tracestyle.distill.models import load_preset, preset_names

    params = {n: load_preset(n).params for n in preset_names()}
    assert all(isinstance(v, int) and v > 0 for v in params.values()), params
    assert all(load_preset(n).family not in ("", "?") for n in preset_names())
    order = sorted(params, key=params.get)
    assert order.index("smollm2-135m") < order.index("qwen2.5-0.5b") < order.index("qwen2.5-3b") \
        < order.index("qwen2.5-7b")


def test_presets_have_per_size_defaults():
    small, big = config_from_preset("smollm2-135m"), config_from_preset("qwen2.5-7b-instruct")
    # precision is `auto` everywhere (resolved on the machine at run time: tests/test_precision.py)
    assert small.lr > big.lr and small.dtype == big.dtype == "auto"
    assert config_from_preset("qwen2.5-3b", max_steps=5).max_steps == 5
    with pytest.raises(InputError, match="unknown student"):
        config_from_preset("gpt-99")
    with pytest.raises(InputError, match="lr"):
        config_from_preset("smollm2-135m", lr=-1.0)


def test_unsloth_translation_builds_the_installed_trl_config():
    """The translated arguments are accepted by the TRL and transformers that `make test` installs (a key they
    dropped, such as warmup_ratio in transformers 5, raises here), with the hf backend's schedule and precision."""
    import torch
    from trl import SFTConfig

    for preset, dtype in (("qwen2.5-0.5b", "bfloat16"), ("smollm2-135m", "float32")):
        bf16 = dtype == "bfloat16"    # run_train resolves the precision before the backend sees it
        cfg = config_from_preset(preset, max_steps=10, seed=3, dtype=dtype)
        a = unsloth_args(cfg, "Qwen/Qwen2.5-0.5B", "/tmp/x", n_rows=40)
        assert a["peft"]["r"] == cfg.lora_r and a["peft"]["random_state"] == 3
        assert a["sft"]["max_steps"] == 10 == cfg.total_steps(40) and a["sft"]["completion_only_loss"] is True
        assert a["sft"]["gradient_accumulation_steps"] == cfg.grad_accum and a["sft"]["bf16"] is bf16
        assert a["sft"]["warmup_steps"] == max(1, int(cfg.warmup_ratio * 10))
        # this machine has no GPU: the same arguments, told to run on the CPU in float32
        cpu = {} if torch.cuda.is_available() else {"use_cpu": True, "bf16": False}
        built = SFTConfig(**{**a["sft"], **cpu})
        assert built.max_steps == 10 and built.warmup_steps == a["sft"]["warmup_steps"]
        assert built.learning_rate == cfg.lr and built.lr_scheduler_type == "linear"
    # epochs, not steps: the step count is the hf backend's for the same rows
    cfg = config_from_preset("smollm2-135m", epochs=2, batch_size=4)
    cfg.max_steps = None
    assert unsloth_args(cfg, "m", "/tmp/x", n_rows=10)["sft"]["max_steps"] == cfg.total_steps(10) == 6


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
    assert c["num_layers"] == -1, "LoRA on every layer, as peft's target modules"
    sched = c["lr_schedule"]
    assert sched["name"] == "linear_schedule" and sched["arguments"][:2] == [cfg.lr, 0.0]
    assert sched["warmup"] == max(1, int(cfg.warmup_ratio * 5)) and sched["arguments"][2] == 5 - sched["warmup"]


@pytest.mark.parametrize("student", ["smollm2-135m", "gemma3-270m"])
@pytest.mark.parametrize("fmt", ["chat", "plain"])
def test_every_trainer_sees_the_hf_backends_text(student, fmt):
    """mlx and unsloth train on the very prompt and completion the hf backend tokenizes (mlx-lm's own completions
    dataset would wrap a plain-format row in the chat template; tracestyle.distill.mlx_lora_main reads it as is)."""
    from tracestyle.distill.examples import encode_example
    from tracestyle.distill.mlx_lora_main import plain_process
    from tracestyle.distill.models import load_tokenizer
    from tracestyle.distill.sft_unsloth import sft_rows

    tok = load_tokenizer(student)
    rows = [{"question": "Who runs the billing service?", "text": "Billing is run by the SRE team.\nANSWER: SRE team"}]
    ex = encode_example(tok, rows[0]["question"], rows[0]["text"], 512, fmt)
    n_prompt = ex["labels"].count(-100)
    for built in (mlx_dataset(rows, tok, fmt), sft_rows(rows, tok, fmt)):
        assert tok(built[0]["prompt"], add_special_tokens=False)["input_ids"] == ex["input_ids"][:n_prompt]
        assert tok(built[0]["completion"], add_special_tokens=False)["input_ids"] == ex["input_ids"][n_prompt:]

    class MlxCompletions:     # what mlx-lm's CompletionsDataset hands to `process`
        prompt_key, completion_key, mask_prompt, tokenizer = "prompt", "completion", True, tok
    ids, offset = plain_process(MlxCompletions(), mlx_dataset(rows, tok, fmt)[0])
    assert ids == ex["input_ids"] and offset == n_prompt
    if fmt == "plain":
        assert "<|im_start|>" not in tok.decode(ids) and tok.decode(ids[:n_prompt]).rstrip().endswith("Answer:")


def test_import_guards_name_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)
    # no vLLM here, none in a project .venv-vllm, none named by TRACESTYLE_VLLM_PYTHON
    monkeypatch.setattr("tracestyle.distill.vllm_worker.ROOT", tmp_path)
    monkeypatch.delenv("TRACESTYLE_VLLM_PYTHON", raising=False)
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
    the adapter mlx-lm trained."""
    pytest.importorskip("mlx_lm", reason="mlx-lm not installed (make setup-test)")
    import json

    from conftest import run_cli

    def ok(r):
        assert r.returncode == 0, r.stderr[-2000:]

    ok(run_cli("problems", "--task", "kg", "--split", "train", "--n", "8", "--out", str(tmp_path / "p.jsonl")))
    ok(run_cli("problems", "--task", "kg", "--split", "eval", "--n", "2", "--out", str(tmp_path / "e.jsonl")))
    ok(run_cli("generate", "--problems", str(tmp_path / "p.jsonl"), "--registers", "normal", "--out", str(tmp_path / "g")))
    # batches of one row: mlx's CPU backend runs a 160-token row in ~20 s here (its matrix products: ~5 GFLOP/s)
    ok(run_cli("train", "--data", str(tmp_path / "g" / "traces.jsonl"), "--backend", "mlx", "--steps", "2",
               "--batch-size", "1", "--max-length", "160", "--out", str(tmp_path / "a")))
    assert (tmp_path / "a" / "adapters.safetensors").exists()
    metrics = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert len(losses) == 2 and all(0 < x < 20 for x in losses), metrics
    man = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert man["counts"]["device"].startswith("mlx") and man["counts"]["examples"] == 7   # one row validates
    ok(run_cli("eval", "--adapter", str(tmp_path / "a"), "--backend", "mlx", "--problems", str(tmp_path / "e.jsonl"),
               "--max-new-tokens", "12", "--limit", "1", "--out", str(tmp_path / "ev")))
    rows = [json.loads(x) for x in (tmp_path / "ev" / "eval.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and all(r["output"].strip() and isinstance(r["correct"], bool) for r in rows)
    # mlx's rows against transformers': a base model here (Gemma 3, below), trained weights in test_conformance.py


@pytest.mark.slow
def test_mlx_gemma3_base_rows_are_transformers_rows():
    """The other bundled student under mlx, in its plain format: Gemma 3's per-attention-type RoPE, its scaled
    embeddings and a BOS the tokenizer adds once. One question (mlx's CPU backend is slow here: ~5 GFLOP/s, and
    Gemma 3's 262k-token output layer is most of each step), greedy float32 rows token-identical to transformers."""
    pytest.importorskip("mlx_lm", reason="mlx-lm not installed (make setup-test)")
    from tracestyle.distill.eval_mlx import MLXGenerator
    from tracestyle.distill.generation import Decoding, generate_batch, load_for_generation
    from tracestyle.distill.loops import LoopWatch
    from tracestyle.tasks.kg.questions import generate_kg_problems

    questions = [p["question"] for p in generate_kg_problems("devops", "eval", 1, 11, {"train": (1, 3), "eval": (1, 3)})]
    dec = Decoding(16, fmt="plain")
    model, tok = load_for_generation("gemma3-270m", None, "cpu", "float32")
    peer = generate_batch(model, tok, questions, dec, watch=LoopWatch(tok))
    del model
    ours = MLXGenerator("gemma3-270m", None).generate(questions, dec)
    assert ours["texts"] == peer["texts"], (ours["texts"], peer["texts"])
    assert ours["tokens"] == peer["tokens"] and ours["truncated"] == peer["truncated"]
