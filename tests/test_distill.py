"""Students on the real bundled SmolLM2-135M: train, exact resume after kill -9, eval, RSFT split hygiene."""

import json
import signal
import time

import pytest

from conftest import cli_process, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kg_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("kgdata")
    assert run_cli("problems", "--task", "kg", "--split", "train", "--n", "24", "--out", str(d / "train.jsonl"),
                   "--closed-book").returncode == 0
    assert run_cli("problems", "--task", "kg", "--split", "eval", "--n", "6", "--out", str(d / "eval.jsonl"),
                   "--closed-book").returncode == 0
    assert run_cli("generate", "--problems", str(d / "train.jsonl"), "--registers", "normal",
                   "--out", str(d / "gen")).returncode == 0
    r = run_cli("curate", "--in", str(d / "gen" / "traces.jsonl"), "--task", "kg", "--out", str(d / "cur"))
    assert r.returncode == 0, r.stderr
    return d


# a learning rate high enough that 6 steps change the student's outputs (test_eval_base_and_adapter)
TRAIN = ["--student", "smollm2-135m", "--steps", "6", "--batch-size", "2", "--max-length", "192",
         "--save-every", "2", "--eval-every", "3", "--seed", "7", "--lr", "3e-3"]


def _metrics(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def reference(kg_data, tmp_path_factory):
    """The one uninterrupted LoRA run the module's tests share: the adapter and the loss curve every resumed run
    must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "a"
    r = run_cli("train", "--data", str(kg_data / "cur" / "kept.jsonl"), *TRAIN, "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_train_leaves_adapter_and_metrics_and_loads_with_plain_peft(kg_data, reference, tmp_path):
    assert (reference / "adapter_config.json").exists()
    m = _metrics(reference / "metrics.jsonl")
    assert [x["step"] for x in m] == [1, 2, 3, 4, 5, 6] and any("eval_loss" in x for x in m)
    assert m[-1]["loss"] < m[0]["loss"]
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tracestyle.distill.models import bundled_model_dir
    base = AutoModelForCausalLM.from_pretrained(bundled_model_dir())
    model = PeftModel.from_pretrained(base, str(reference))
    assert any("lora_A" in n for n, _ in model.named_parameters())
    # an unchanged rerun is skipped
    r = run_cli("train", "--data", str(kg_data / "cur" / "kept.jsonl"), *TRAIN, "--out", str(reference))
    assert "nothing to do" in r.stdout

    # killed mid-run (kill -9, its own process), resumed: the same loss curve as the uninterrupted run
    out = tmp_path / "b"
    proc = cli_process("train", "--data", str(kg_data / "cur" / "kept.jsonl"), *TRAIN, "--out", str(out))
    deadline = time.time() + 600
    while time.time() < deadline and not (out / "checkpoints" / "step-4").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "adapter_config.json").exists()
    r = run_cli("train", "--data", str(kg_data / "cur" / "kept.jsonl"), *TRAIN, "--out", str(out))
    assert r.returncode == 0, r.stderr
    resumed = _metrics(out / "metrics.jsonl")
    assert [x["step"] for x in resumed] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(m, resumed):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-4), (a, b)


def test_eval_base_and_adapter(kg_data, reference, tmp_path):
    r = run_cli("eval", "--student", "smollm2-135m", "--problems", str(kg_data / "eval.jsonl"),
                "--out", str(tmp_path / "e"), "--batch-size", "3", "--max-new-tokens", "24")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in (tmp_path / "e" / "eval.jsonl").read_text().splitlines()]
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert len(rows) == 6 and all(isinstance(x["correct"], bool) for x in rows)
    assert summary["n"] == 6 and summary["accuracy"] == sum(x["correct"] for x in rows) / 6
    assert all("path_valid" in x and x["tokens"] > 0 for x in rows)
    assert summary["tokens_per_s"] > 0
    # the same problems with the trained adapter: its weights are used (the outputs change) and hashed as input
    r = run_cli("eval", "--student", "smollm2-135m", "--adapter", str(reference), "--problems",
                str(kg_data / "eval.jsonl"), "--out", str(tmp_path / "ea"), "--batch-size", "3",
                "--max-new-tokens", "24")
    assert r.returncode == 0, r.stderr
    tuned = [json.loads(x) for x in (tmp_path / "ea" / "eval.jsonl").read_text().splitlines()]
    man = json.loads((tmp_path / "ea" / "manifest.json").read_text())
    assert man["config"]["adapter"] == str(reference) and any("adapter_model.safetensors" in k for k in man["inputs"])
    assert [x["output"] for x in tuned] != [x["output"] for x in rows], "the adapter changed nothing"


def test_full_disk_stops_training_cleanly_and_the_rerun_resumes(kg_data, reference, tmp_path, monkeypatch):
    """A disk that fills during training: a plain error naming the folder before anything is half-written, the
    last complete checkpoint kept, and the rerun continues from it to the reference curve."""
    import shutil as real_shutil

    import tracestyle.diskspace as ds

    calls = []
    usage = real_shutil.disk_usage

    def filling(path):
        calls.append(path)
        u = usage(path)
        return u._replace(free=0) if len(calls) >= 2 else u      # full from the second checkpoint (step 4) on

    out = tmp_path / "run"
    args = ("train", "--data", str(kg_data / "cur" / "kept.jsonl"), *TRAIN, "--out", str(out))
    monkeypatch.setattr(ds.shutil, "disk_usage", filling)
    r = run_cli(*args)
    assert r.returncode == 2 and "checkpoint of step 4" in r.stderr and str(out) in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2"]   # no half-written step-4
    assert not (out / "manifest.json").exists()
    monkeypatch.setattr(ds.shutil, "disk_usage", usage)
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert not (out / "checkpoints").exists()
    assert [x["loss"] for x in _metrics(out / "metrics.jsonl")] == \
        pytest.approx([x["loss"] for x in _metrics(reference / "metrics.jsonl")], rel=1e-3, abs=1e-4)


def test_full_fine_tuning_resumes_and_evaluates(kg_data, tmp_path):
    """--full: checkpoints hold the whole model, a killed run resumes on the same curve, eval takes the folder."""
    args = ["train", "--data", str(kg_data / "cur" / "kept.jsonl"), "--full", "--student", "smollm2-135m",
            "--steps", "4", "--batch-size", "2", "--max-length", "160", "--save-every", "2", "--seed", "3",
            "--lr", "1e-5"]
    ref = tmp_path / "ref"
    assert run_cli(*args, "--out", str(ref)).returncode == 0
    m = _metrics(ref / "metrics.jsonl")
    out = tmp_path / "full"
    proc = cli_process(*args, "--out", str(out))
    deadline = time.time() + 600
    while time.time() < deadline and not (out / "checkpoints" / "step-2" / "state.pt").exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists() and (out / "checkpoints" / "step-2" / "model.safetensors").exists()
    r = run_cli(*args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    resumed = _metrics(out / "metrics.jsonl")
    assert [x["step"] for x in resumed] == [1, 2, 3, 4]
    for a, b in zip(m, resumed):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-4), (a, b)
    r = run_cli("eval", "--student", "smollm2-135m", "--adapter", str(out), "--problems", str(kg_data / "eval.jsonl"),
                "--out", str(tmp_path / "e"), "--batch-size", "3", "--max-new-tokens", "16")
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert any(k.endswith("model.safetensors") for k in man["inputs"])
    # RSFT from a --full model continues that model (not a LoRA adapter read from its folder)
    import torch
    from safetensors.torch import load_file

    from tracestyle.distill.config import config_from_preset
    from tracestyle.distill.sft_hf import build_model

    m = build_model(config_from_preset("smollm2-135m", lora=False), "cpu", adapter=str(out))
    assert not hasattr(m, "peft_config")
    saved = load_file(str(out / "model.safetensors"))
    name = next(k for k in saved if k.endswith("layers.0.self_attn.q_proj.weight"))
    assert torch.equal(m.state_dict()[name].float(), saved[name].float())


def test_rsft_refuses_eval_split_and_runs_on_train(kg_data, tmp_path):
    r = run_cli("rsft", "--problems", str(kg_data / "eval.jsonl"), "--student", "smollm2-135m",
                "--out", str(tmp_path / "leak"), "--steps", "1")
    assert r.returncode == 2 and "eval-split" in r.stderr and "--allow-eval-leak" in r.stderr
    small = tmp_path / "pool.jsonl"
    small.write_text("".join((kg_data / "train.jsonl").read_text().splitlines(True)[:4]))
    r = run_cli("rsft", "--problems", str(small), "--student", "smollm2-135m", "--out", str(tmp_path / "rs"),
                "--k", "2", "--steps", "2", "--batch-size", "2", "--max-new-tokens", "32", "--temperature", "1.0")
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "rs" / "manifest.json").read_text())
    hist = man["counts"]["history"][0]
    assert hist["samples"] == 8 and man["eval_leak"] is False
    samples = [json.loads(x) for x in (tmp_path / "rs" / "round-1" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 8 and all("reward" in s for s in samples)


def test_rsft_pool_matched_to_eval_difficulty(kg_data, tmp_path):
    """--match-difficulty: the pool follows the eval's difficulty histogram; a pool that has none of its levels is
    refused before any sampling."""
    r = run_cli("rsft", "--problems", str(kg_data / "train.jsonl"), "--match-difficulty", str(kg_data / "eval.jsonl"),
                "--student", "smollm2-135m", "--out", str(tmp_path / "none"), "--steps", "1")
    assert r.returncode == 2 and "difficulty" in r.stderr and not (tmp_path / "none").exists()
    lines = (kg_data / "train.jsonl").read_text().splitlines(True)
    pool, target = tmp_path / "pool.jsonl", tmp_path / "target.jsonl"
    pool.write_text("".join(lines[:12]))
    target.write_text("".join(lines[12:16]))
    r = run_cli("rsft", "--problems", str(pool), "--match-difficulty", str(target), "--pool-n", "4",
                "--student", "smollm2-135m", "--out", str(tmp_path / "rs"), "--k", "1", "--steps", "1",
                "--batch-size", "2", "--max-new-tokens", "16")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "rs" / "manifest.json").read_text())["counts"]["pool_difficulty"]
    assert rep["chosen"] <= 4 and rep["removed_as_eval"] == 0
    want = {k: v / sum(rep["target_levels"].values()) for k, v in rep["target_levels"].items()}
    got = {k: v / max(1, rep["chosen"]) for k, v in rep["chosen_levels"].items()}
    assert set(got) <= set(want) and all(abs(got[k] - want[k]) <= 0.26 for k in got), (want, got)
