"""Training configuration: presets override TrainConfig's defaults; micro-batches keep the optimizer batch's
gradient while bounding the tokens that run at once (checked on the real bundled model)."""

import pytest

from tracestyle.distill import models
from tracestyle.distill.config import TrainConfig, config_from_preset
from tracestyle.distill.sft_hf import micro_batches, micro_budget
from tracestyle.errors import InputError


def test_preset_overrides_defaults_and_cli_overrides_preset():
    cfg = config_from_preset("smollm2-135m")
    assert (cfg.lr, cfg.max_length, cfg.max_steps) == (1e-3, 320, 60)
    assert "down_proj" in cfg.lora_targets and cfg.lora_r == 16
    assert config_from_preset("smollm2-135m", lr=5e-4, micro_batch_tokens=0).lr == 5e-4
    generic = config_from_preset("Org/Some-Model")  # a hub id: TrainConfig's own defaults
    assert (generic.lr, generic.lora_targets) == (TrainConfig.lr, ["q_proj", "k_proj", "v_proj", "o_proj"])


@pytest.mark.parametrize("text, field", [
    ("model: x\nlearning_rate: 0.1\n", "learning_rate"),
    ("model: x\nlora: {r: 8, rank: 8}\n", "lora.rank"),
    ("model: x\nlora: true\n", "lora"),
    ("size: 1B\n", "model"),
])
def test_bad_preset_names_file_and_key(tmp_path, monkeypatch, text, field):
    (tmp_path / "mine.yaml").write_text(text)
    monkeypatch.setattr(models, "PRESET_DIR", tmp_path)
    with pytest.raises(InputError) as e:
        config_from_preset("mine")
    assert "mine.yaml" in str(e.value) and field in str(e.value)


def test_bad_micro_batch_tokens():
    with pytest.raises(InputError, match="micro_batch_tokens"):
        config_from_preset("smollm2-135m", micro_batch_tokens=-5)


def test_micro_batches_cover_the_batch_within_budget():
    lengths = [300, 40, 120, 100, 90, 260, 30, 64]
    ex = [{"input_ids": [0] * n} for n in lengths]
    idx = list(range(len(ex)))
    for budget in (1, 128, 256, 512, 4096):
        mbs = micro_batches(ex, idx, budget)
        assert sorted(i for mb in mbs for i in mb) == idx
        for mb in mbs:
            padded = len(mb) * max(lengths[i] for i in mb)
            assert padded <= budget or len(mb) == 1
    assert micro_batches(ex, idx, 0) == [idx]
    assert len(micro_batches(ex, idx, 4096)) == 1
    cfg = TrainConfig()
    # no GPU memory to read here: the whole batch (a GPU sizes it: tests/test_gpu_recipe.py)
    assert micro_budget(cfg, "cpu") == 512 and micro_budget(cfg, "cuda") == 0
    cfg.micro_batch_tokens = 0
    assert micro_budget(cfg, "cpu") == 0


def test_micro_batched_gradient_equals_whole_batch_gradient():
    import torch

    from tracestyle.curate.teachers.template import template_trace
    from tracestyle.distill.examples import collate
    from tracestyle.distill.models import load_tokenizer
    from tracestyle.distill.sft_hf import build_model, completion_loss, prepare_examples
    from tracestyle.prompts import load_registers
    from tracestyle.tasks.kg.questions import generate_kg_problems

    reg = load_registers(["titanium"])["titanium"]
    rows = [{"question": p["question"], "text": template_trace(p, reg), "problem_id": p["id"]}
            for p in generate_kg_problems("devops", "train", 6, 3)]
    cfg = config_from_preset("smollm2-135m", max_length=192, lora_targets=["q_proj", "down_proj"])
    tok = load_tokenizer(cfg.student)
    ex = prepare_examples(rows, tok, cfg)
    model = build_model(cfg, "cpu")
    params = [p for p in model.parameters() if p.requires_grad]
    n_tok = sum(e["n_completion"] for e in ex)

    def grads(budget):
        model.zero_grad(set_to_none=True)
        total = 0.0
        for mb in micro_batches(ex, list(range(len(ex))), budget):
            loss, _ = completion_loss(model, *collate([ex[i] for i in mb], tok.pad_token_id))
            (loss / n_tok).backward()
            total += float(loss.detach())
        return total, [p.grad.clone() for p in params]

    # LoRA B starts at zero, so only B's gradients are non-zero; they carry the whole comparison
    whole_loss, whole = grads(0)
    mb_loss, parts = grads(2 * max(len(e["input_ids"]) for e in ex))
    assert len(micro_batches(ex, list(range(len(ex))), 2 * max(len(e["input_ids"]) for e in ex))) == 3
    assert mb_loss == pytest.approx(whole_loss, rel=1e-5)
    assert sum(float(g.abs().sum()) for g in whole) > 0
    for a, b in zip(whole, parts):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("family,extra", [("gemma2", {"final_logit_softcapping": 0.05, "head_dim": 16}),
                                          ("granite", {"logits_scaling": 4.0}),
                                          ("cohere", {"logit_scale": 0.5}),
                                          ("qwen2", {})])
def test_the_loss_uses_the_models_own_output_head(family, extra):
    """The trainer runs the LM head only on completion positions; its logits there must equal the model's own
    forward (Gemma 2 soft-caps them, Granite and Cohere scale them). Tiny random-init models of each family."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tracestyle.distill.sft_hf import head_logits

    cfg = AutoConfig.for_model(family, vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                               num_attention_heads=2, num_key_value_heads=1, **extra)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg).eval()
    ids = torch.randint(0, 96, (2, 7))
    with torch.no_grad():
        want = model(input_ids=ids).logits.float()
        hidden = model.model(input_ids=ids).last_hidden_state
        got = head_logits(model, hidden.reshape(-1, hidden.shape[-1])).reshape(want.shape)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    if extra:   # the family's own step matters: the bare LM head would differ
        assert not torch.allclose(model.lm_head(hidden).float(), want, atol=1e-3)


def test_checkpoint_rng_state_round_trips(tmp_path):
    """A resumed run draws the same random numbers (CPU here; CUDA generators are saved beside it on a GPU)."""
    import torch

    from tracestyle.distill.sft_hf import restore_rng, rng_state

    torch.save(rng_state(), tmp_path / "state.pt")
    first = torch.rand(4)
    restore_rng(torch.load(tmp_path / "state.pt", weights_only=True, map_location="cpu"))
    assert torch.equal(torch.rand(4), first)
