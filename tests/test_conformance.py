"""Every evaluation engine installed here is the same student as transformers on trained weights: a rank-64 LoRA
adapter trained in the plain format (over vLLM's default max_lora_rank of 16) and a fully fine-tuned model in the chat
format. Greedy float32 rows must be token-identical to the transformers path in text, token count, cut-off flag and
loops stopped (CTranslate2 over the merged weights, vLLM with the adapter loaded as LoRA, mlx over the merged weights);
through `tracestyle eval` the accuracy and rows of `--backend vllm`, `ct2` and `mlx` are those of `--backend hf`.
The base models are compared in tests/test_eval_engine.py (ct2), tests/test_vllm.py and tests/test_backends.py (mlx)."""

from __future__ import annotations

import json

import pytest

from tracestyle.jsonl import write_jsonl

from conftest import run_cli

pytestmark = pytest.mark.slow


def _kg_problems(n, seed, hops=(1, 3)):
    from tracestyle.tasks.kg.questions import generate_kg_problems

    return generate_kg_problems("devops", "eval", n, seed, {"train": hops, "eval": hops})


def _train(tmp, name, *extra):
    from tracestyle.curate.teachers.template import template_trace
    from tracestyle.prompts import load_registers

    reg = load_registers(["normal"])["normal"]
    data = tmp / "traces.jsonl"
    write_jsonl(data, [{"problem_id": p["id"], "question": p["question"], "text": template_trace(p, reg),
                        "split": "train"} for p in _kg_problems(24, 3)])
    out = tmp / name
    r = run_cli("train", "--data", str(data), "--out", str(out), "--steps", "3", "--batch-size", "4",
                "--max-length", "256", *extra)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def lora64(tmp_path_factory):
    out = _train(tmp_path_factory.mktemp("lora64"), "r64", "--lora-r", "64", "--lora-alpha", "128", "--lr", "1e-3",
                 "--prompt-format", "plain")
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 64
    return out


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("full"), "full", "--full", "--lr", "1e-5")


def _vllm_or_skip():
    from tracestyle.distill.eval_vllm import vllm_python
    from tracestyle.errors import MissingExtraError

    try:
        vllm_python()
    except MissingExtraError as e:
        pytest.skip(str(e))


def _engine_rows(backend, student, adapter, questions, dec):
    if backend == "mlx":
        pytest.importorskip("mlx_lm", reason="mlx-lm not installed (make setup-test)")
        from tracestyle.distill.eval_mlx import MLXGenerator

        return MLXGenerator(student, adapter).generate(questions, dec)
    if backend == "ct2":
        pytest.importorskip("ctranslate2")
        from tracestyle.distill.engine_ct2 import CT2Generator

        return CT2Generator(student, adapter).generate(questions, dec, batch_size=len(questions))
    _vllm_or_skip()
    from tracestyle.distill.eval_vllm import VLLMGenerator

    return VLLMGenerator(student, adapter, "float32").generate(questions, dec)


# mlx's CPU backend (Linux) multiplies matrices at ~5 GFLOP/s here: it gets 2 questions where the others get 6
@pytest.mark.parametrize("backend", ["ct2", "vllm", "mlx"])
def test_full_model_rows_are_transformers_rows(backend, full):
    from tracestyle.distill.generation import Decoding, generate_batch, load_for_generation
    from tracestyle.distill.loops import LoopWatch

    qs = [p["question"] for p in _kg_problems(6, 12)][: 2 if backend == "mlx" else 6]
    dec = Decoding(40, fmt="chat")
    model, tok = load_for_generation("smollm2-135m", str(full), "cpu", "float32")
    peer = generate_batch(model, tok, qs, dec, watch=LoopWatch(tok))
    del model
    ours = _engine_rows(backend, "smollm2-135m", str(full), qs, dec)
    assert ours["texts"] == peer["texts"], list(zip(peer["texts"], ours["texts"]))
    assert ours["tokens"] == peer["tokens"] and ours["truncated"] == peer["truncated"]
    assert ours["loops_stopped"] == peer["loops_stopped"]


@pytest.mark.parametrize("backend", ["ct2", "vllm", "mlx"])
def test_eval_with_a_rank_64_adapter_gives_hfs_rows(backend, lora64, tmp_path):
    if backend == "vllm":
        _vllm_or_skip()
    if backend == "mlx":     # a peft adapter on mlx: merged as transformers merges it
        pytest.importorskip("mlx_lm", reason="mlx-lm not installed (make setup-test)")
    probs = tmp_path / "eval.jsonl"
    write_jsonl(probs, _kg_problems(2 if backend == "mlx" else 6, 21))
    res = {}
    for b in ("hf", backend):
        r = run_cli("eval", "--adapter", str(lora64), "--problems", str(probs), "--out", str(tmp_path / b),
                    "--backend", b, "--max-new-tokens", "64", "--precision", "float32")
        assert r.returncode == 0, r.stderr
        res[b] = [json.loads(x) for x in (tmp_path / b / "eval.jsonl").read_text().splitlines()]
    keys = ("problem_id", "output", "tokens", "truncated", "correct", "verdict", "extracted")
    assert [{k: x[k] for k in keys} for x in res[backend]] == [{k: x[k] for k in keys} for x in res["hf"]]
    summary = json.loads((tmp_path / backend / "summary.json").read_text())
    assert summary["backend"] == backend and summary["precision"] == "float32"
    assert json.loads((tmp_path / backend / "manifest.json").read_text())["config"]["format"] == "plain"
    assert set(summary) == set(json.loads((tmp_path / "hf" / "summary.json").read_text()))
