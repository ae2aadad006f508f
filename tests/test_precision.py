"""Precision: `auto` follows the CPU's flags; bf16 training keeps float32 master weights; one precision per grid,
recorded in every manifest, results.csv and the report; bf16 against float32 on the same cells, paired."""

import csv
import json
import shutil

import pytest
from safetensors.torch import load_file

from tracestyle import precision
from tracestyle.errors import InputError

from conftest import run_cli

AMX = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
"""
AVX2 = """processor\t: 0
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse sse2 avx avx2 fma
"""
ARM = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics bf16 i8mm
CPU implementer\t: 0x41
"""


@pytest.mark.parametrize("text,model,native", [(AMX, "Intel(R) Xeon(R) Platinum 8480+", True),
                                               (AVX2, "AMD EPYC 7B12", False), (ARM, None, True)])
def test_auto_follows_the_cpu_flags_not_the_vendor(text, model, native, monkeypatch):
    name, flags = precision.parse_cpuinfo(text)
    if model:
        assert name == model
    facts = precision.facts_from(name, flags, 2)
    assert facts["native_bf16"] is native
    monkeypatch.setattr(precision, "cpu_facts", lambda: facts)
    monkeypatch.delenv("TRACESTYLE_PRECISION", raising=False)
    assert precision.resolve_precision("auto", "cpu") == ("bfloat16" if native else "float32")
    assert precision.resolve_precision("fp32", "cpu") == "float32"      # forced, whatever the flags
    assert precision.resolve_precision("bf16", "cpu") == "bfloat16"
    monkeypatch.setenv("TRACESTYLE_PRECISION", "float32")                # a machine pinned by its user
    assert precision.resolve_precision("auto", "cpu") == "float32"
    assert precision.resolve_precision("bfloat16", "cpu") == "bfloat16"  # an explicit choice still wins
    assert "bf16" in precision.describe_cpu() or "flags" in precision.describe_cpu()


def test_unknown_precision_names_the_field(tmp_path):
    with pytest.raises(InputError) as e:
        precision.normalise("fp8")
    assert e.value.field == "precision" and "fp8" in str(e.value)
    spec = tmp_path / "g.yaml"
    spec.write_text("task: kg\nregisters: [normal]\nprecision: half\n")
    r = run_cli("grid", str(spec), "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and f"{spec}:3: field 'precision'" in r.stderr


def test_bf16_training_keeps_float32_master_weights():
    import torch

    from tracestyle.distill.config import config_from_preset
    from tracestyle.distill.sft_hf import build_model

    lora = build_model(config_from_preset("smollm2-135m", dtype="bfloat16", lora_r=4, lora_alpha=8), "cpu")
    trained = {n: p.dtype for n, p in lora.named_parameters() if p.requires_grad}
    frozen = {p.dtype for p in lora.parameters() if not p.requires_grad}
    assert trained and set(trained.values()) == {torch.float32}, "LoRA weights are the float32 master copy"
    assert frozen == {torch.bfloat16}, "the frozen base is stored in bf16 (as its checkpoint is)"
    full = build_model(config_from_preset("smollm2-135m", dtype="bfloat16", lora=False), "cpu")
    assert {p.dtype for p in full.parameters()} == {torch.float32}, "full fine-tuning: every weight float32"


GRID = """task: kg
kg: devops
registers: [normal]
students: [smollm2-135m]
train_hops: [1, 3]
eval_hops: [1, 3]
train_n: 24
eval_n: 24
batch_size: 4
steps: 3
eval_max_new_tokens: 48
eval_batch_size: 12
nll_sample: 2
"""


@pytest.mark.slow
def test_one_grid_in_bf16_and_float32_compared_on_the_same_cells(tmp_path):
    spec = tmp_path / "g.yaml"
    spec.write_text(GRID)
    fp32, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    r = run_cli("grid", str(spec), "--out", str(fp32), "--precision", "float32")
    assert r.returncode == 0, r.stderr
    # the bf16 run starts from a copy of the float32 one: every model stage must run again in bf16, none may be
    # reused from the other precision (the manifests are keyed by it)
    shutil.copytree(fp32, bf16)
    r = run_cli("grid", str(spec), "--out", str(bf16), "--precision", "bf16")
    assert r.returncode == 0, r.stderr
    for run, want in ((fp32, "float32"), (bf16, "bfloat16")):
        rows = list(csv.DictReader(open(run / "results.csv")))
        assert {(x["register"], x["precision"]) for x in rows} == {("base", want), ("normal", want)}
        assert all(x["engine"] == "hf" for x in rows), "below the probe threshold a CPU evaluates in transformers"
        assert json.loads((run / "spec.json").read_text())["precision"] == want
        tc = json.loads((run / "cells/smollm2-135m/normal/seed0/adapter/train_config.json").read_text())
        assert tc["dtype"] == want
        adapter = load_file(str(run / "cells/smollm2-135m/normal/seed0/adapter/adapter_model.safetensors"))
        assert {str(t.dtype) for t in adapter.values()} == {"torch.float32"}
        assert json.loads((run / "cells/smollm2-135m/normal/nll/nll.json").read_text())["precision"] == want
        assert f"Precision: {want}" in (run / "report.md").read_text()
    r = run_cli("compare", str(fp32), str(bf16), "--out", str(tmp_path / "cmp.md"))
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "cmp.md").read_text()
    assert "bfloat16 (hf) against float32 (hf)" in md
    # paired on the same 24 questions: the bf16 student answers mostly as the float32 one does
    cells = [ln for ln in md.splitlines() if ln.startswith("| smollm2-135m |")]
    assert len(cells) >= 2
    for ln in cells[:2]:
        parts = [p.strip() for p in ln.strip("|").split("|")]
        assert parts[3] == "24"
        assert abs(float(parts[5]) - float(parts[4])) <= 0.25
        assert int(parts[8].rstrip("%")) >= 60, ln
    assert "Conclusions of the report" in md


def test_engine_chosen_by_expected_seconds_conversion_included(monkeypatch):
    from tracestyle.distill import engine_choice

    monkeypatch.setattr(engine_choice.engine_ct2, "available", lambda: True)
    monkeypatch.setattr(engine_choice, "vllm_available", lambda: None)
    rates = {"hf": 100.0, "ct2": 150.0, "ct2_load_seconds": 30.0, "cached": True}
    monkeypatch.setattr(engine_choice, "measure", lambda *a, **k: rates)
    qs = ["q"] * 100
    pick = engine_choice.choose
    assert pick("s", None, "bfloat16", qs, fmt="chat", batch_size=32, max_new_tokens=256)[0] == "hf"   # ct2: no bf16
    assert pick("s", None, "float32", qs[:10], fmt="chat", batch_size=32, max_new_tokens=256)[0] == "hf"  # no probe
    monkeypatch.setattr(engine_choice.engine_ct2, "is_converted", lambda *a: False)
    # 25,600 tokens at most, 40% of it expected (10,240): hf 102.4 s; ct2 68.3 s + a 30 s conversion of the adapter
    engine, why = pick("s", "adapter", "float32", qs, fmt="chat", batch_size=32, max_new_tokens=256)
    assert engine == "ct2" and why["expected_seconds"] == {"hf": 102.4, "ct2": 98.3}
    rates["ct2_load_seconds"] = 100.0    # now the conversion costs more than it saves
    assert pick("s", "adapter", "float32", qs, fmt="chat", batch_size=32, max_new_tokens=256)[0] == "hf"
    assert pick("s", None, "float32", qs, fmt="chat", batch_size=32, max_new_tokens=256)[0] == "ct2"   # base: converted


def test_vllm_chosen_when_its_start_pays_for_itself(monkeypatch, tmp_path):
    from tracestyle.distill import engine_choice

    monkeypatch.setattr(engine_choice.engine_ct2, "available", lambda: False)
    monkeypatch.setattr(engine_choice, "vllm_available", lambda: "/venv/bin/python")
    rates = {"hf": 100.0, "vllm": 300.0, "vllm_start_seconds": 20.0, "cached": True}
    monkeypatch.setattr(engine_choice, "measure", lambda *a, **k: rates)
    pick = engine_choice.choose
    # 10,240 expected tokens: hf 102.4 s; vLLM one start (100 rows: one call) + 34.1 s
    engine, why = pick("s", None, "bfloat16", ["q"] * 100, fmt="chat", batch_size=64, max_new_tokens=256)
    assert engine == "vllm" and why["expected_seconds"] == {"hf": 102.4, "vllm": 54.1}
    # a LoRA adapter: vLLM's CPU build runs it unmerged, several times slower than its base model (not a candidate)
    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / "adapter_config.json").write_text("{}")
    assert pick("s", str(lora), "bfloat16", ["q"] * 100, fmt="chat", batch_size=64, max_new_tokens=256)[0] == "hf"
    # a short evaluation: the start costs more than the faster rate saves (20 rows: hf 20.5 s, vLLM 26.8 s)
    assert pick("s", None, "bfloat16", ["q"] * 20, fmt="chat", batch_size=64, max_new_tokens=256)[0] == "hf"
    # every call starts vLLM again: 600 rows at 256 per call are 3 starts
    rates["vllm_start_seconds"] = 200.0
    engine, why = pick("s", None, "bfloat16", ["q"] * 600, fmt="chat", batch_size=64, max_new_tokens=256)
    assert engine == "hf" and why["expected_seconds"] == {"hf": 614.4, "vllm": 804.8}


def test_engine_probe_measures_once_per_machine(tmp_path, monkeypatch):
    from tracestyle import measured
    from tracestyle.distill import engine_choice
    from tracestyle.tasks.kg.questions import generate_kg_problems

    monkeypatch.setattr(measured, "path", lambda name: tmp_path / f"{name}.json")
    qs = [p["question"] for p in generate_kg_problems("devops", "eval", 4, 3)]
    first = engine_choice.measure("smollm2-135m", "float32", qs, "chat", 4)
    assert first["cached"] is False and first["hf"] > 0 and first["ct2"] > 0 and first["ct2_load_seconds"] >= 0
    if engine_choice.vllm_available():     # make test installs vLLM's CPU build: its probe runs for real
        assert first["vllm"] > 0 and first["vllm_start_seconds"] > 0
    again = engine_choice.measure("smollm2-135m", "float32", qs, "chat", 4)
    assert again["cached"] is True and again["hf"] == first["hf"]
    key = next(iter(json.loads((tmp_path / "engine_rates.json").read_text())))
    assert precision.cpu_facts()["cpu"] in key and "smollm2-135m" in key and "float32" in key
