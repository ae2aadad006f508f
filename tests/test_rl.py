"""GRPO through TRL (tracestyle rl): rewards on real traces, the eval-split refusal, a two-step run end to end on
the bundled student, resume after a kill inside RL, and the grid's GRPO and transfer cells."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tracestyle.curate.corrupt import corrupt_row
from tracestyle.curate.teachers.template import template_trace
from tracestyle.errors import InputError
from tracestyle.jsonl import write_jsonl
from tracestyle.prompts import load_registers
from tracestyle.rl.rewards import Completion, parse_rewards, reward_label
from tracestyle.tasks import get_task
from tracestyle.tasks.gsm8k.source import load_gsm8k

from conftest import cli_process, run_cli

KG_OPTS = {"kg": "devops", "train_hops": (2, 3), "eval_hops": (4, 5)}


def _r(name):
    return parse_rewards(name)[0][2]


@pytest.fixture(scope="module")
def kg_problems():
    return get_task("kg").load_problems(split="train", n=12, seed=5, options=KG_OPTS)


def test_answer_and_path_rewards_on_template_traces(kg_problems):
    regs = load_registers()
    for p in kg_problems:
        for name, reg in regs.items():
            text = template_trace(p, reg)
            assert _r("answer")(p, Completion(text)) == 1.0, (name, text)
            assert _r("kg_path")(p, Completion(text)) == pytest.approx(1.0), (name, text)
            # the right answer alone, with no path: full answer reward, no path credit
            assert _r("kg_path")(p, Completion(f"The answer is {p['gold']}.")) == 0.0
    # a trace with a wrong edge keeps its answer but loses path credit
    inverted = 0   # traces with a wrong edge
    for p in kg_problems:
        row = {"problem_id": p["id"], "register": "normal", "text": template_trace(p, regs["normal"]), "gold": p["gold"],
               "problem": p}
        bad = corrupt_row(row, "wrong_edge", 0)
        if bad:
            inverted += 1
            assert _r("kg_path")(p, Completion(bad["text"])) < 1.0
    assert inverted >= len(kg_problems) // 2


def test_steps_format_length_and_repetition_rewards(gsm8k_dir):
    regs = load_registers()
    probs = load_gsm8k("train", gsm8k_dir, 20)
    for p in probs:
        text = template_trace(p, regs["titanium"])
        assert _r("steps")(p, Completion(text)) == 1.0
        assert _r("answer")(p, Completion(text)) == 1.0
    p = probs[0]
    row = {"problem_id": p["id"], "register": "normal", "text": template_trace(p, regs["normal"]), "gold": p["gold"],
           "problem": p}
    bad = corrupt_row(row, "wrong_value", 0)
    assert 0.0 <= _r("steps")(p, Completion(bad["text"])) < 1.0
    assert _r("steps")(p, Completion("I think it is 5.")) == 0.0       # nothing checkable earns nothing
    assert _r("kg_path")(p, Completion("x")) is None                    # a KG reward does not apply to math
    tit = regs["titanium"].compliance
    assert _r("format")(p, Completion(template_trace(p, regs["titanium"]), register_rules=tit)) == 1.0
    assert _r("format")(p, Completion(template_trace(p, regs["diamond"]), register_rules=tit)) == 0.0
    assert _r("format")(p, Completion("x", register_rules=None)) is None
    assert _r("length")(p, Completion("12 + 3 = 15 and then", truncated=True)) == -1.0
    assert _r("repetition")(p, Completion("so we add 3 and 4.\n" * 12)) < -0.8
    assert _r("repetition")(p, Completion(template_trace(p, regs["normal"]))) > -0.2


def test_reward_parsing():
    got = parse_rewards("answer, kg_path:0.5")
    assert [(n, w) for n, w, _ in got] == [("answer", 1.0), ("kg_path", 0.5)]
    assert reward_label("answer,kg_path:0.5") == "answer-kg_path0.5"
    # a user's own reward by dotted path
    assert parse_rewards("tracestyle.rl.rewards.length_reward")[0][2] is _r("length")
    for bad, msg in (("", "at least one"), ("answr", "unknown reward"), ("answer:x", "must be a number"),
                     ("answer,answer", "twice"), ("answer:0", "weight 0"), ("no.such.module.fn", "cannot import")):
        with pytest.raises(InputError, match=msg):
            parse_rewards(bad)


def _problems_file(tmp_path: Path, problems: list[dict], name="train.jsonl") -> Path:
    path = tmp_path / name
    write_jsonl(path, problems)
    return path


def test_rl_refuses_the_eval_split_and_inapplicable_rewards(tmp_path, kg_problems, gsm8k_dir):
    ev = [{**p, "split": "eval"} for p in kg_problems[:3]]
    r = run_cli("rl", "--problems", str(_problems_file(tmp_path, ev)), "--out", str(tmp_path / "o"), "--steps", "1")
    assert r.returncode == 2 and "eval-split" in r.stderr and "--allow-eval-leak" in r.stderr, r.stderr
    assert "train.jsonl:1: field 'split'" in r.stderr
    math = _problems_file(tmp_path, load_gsm8k("train", gsm8k_dir, 3), "math.jsonl")
    r = run_cli("rl", "--problems", str(math), "--reward", "answer,kg_path", "--out", str(tmp_path / "o2"))
    assert r.returncode == 2 and "kg_path" in r.stderr and "applies to none" in r.stderr, r.stderr
    r = run_cli("rl", "--problems", str(math), "--reward", "format", "--out", str(tmp_path / "o3"))
    assert r.returncode == 2 and "--register" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2").exists()


def test_trl_sees_the_prompt_evaluation_builds(tmp_path):
    """TRL tokenizes plain-text prompts with special tokens: the ids must still be evaluation's."""
    from tracestyle.distill.examples import build_prompt
    from tracestyle.distill.models import load_tokenizer
    from tracestyle.rl.grpo import stop_ids, trl_prompt

    tok = load_tokenizer("smollm2-135m")
    for fmt in ("chat", "plain"):
        q = "Which service does api-gateway depend on?"
        assert tok(trl_prompt(tok, q, fmt))["input_ids"] == \
            tok(build_prompt(tok, q, fmt), add_special_tokens=False)["input_ids"]
        assert tok.eos_token_id in stop_ids(tok, fmt)


def test_rollout_choice_and_trls_vllm_arguments(tmp_path, monkeypatch):
    """Who writes the rollouts: transformers on this CPU; vLLM through TRL only where it can run, with evaluation's
    stop tokens; the arguments are TRL's own (GRPOConfig accepts them)."""
    from trl import GRPOConfig

    from tracestyle.errors import MissingExtraError
    from tracestyle.rl import grpo
    from tracestyle.rl.grpo import RLConfig, rollout_args

    assert rollout_args(RLConfig(), "cpu", [2]) == ("transformers", {})
    with pytest.raises(InputError, match="--rollouts transformers"):
        rollout_args(RLConfig(rollouts="vllm"), "cpu", [2])
    who, args = rollout_args(RLConfig(vllm_server="http://127.0.0.1:8000"), "cpu", [2, 7])
    assert who == "vllm (server)" and args["vllm_mode"] == "server"
    assert args["generation_kwargs"] == {"stop_token_ids": [2, 7]}
    monkeypatch.setattr(grpo, "_vllm_importable", lambda: False)
    assert rollout_args(RLConfig(), "cuda", [2])[0] == "transformers"
    with pytest.raises(MissingExtraError, match=r"tracestyle\[vllm\]"):
        rollout_args(RLConfig(rollouts="vllm"), "cuda", [2])
    monkeypatch.setattr(grpo, "_vllm_importable", lambda: True)
    who, args = rollout_args(RLConfig(), "cuda", [2])
    assert who == "vllm (colocate)" and args["vllm_gpu_memory_utilization"] == 0.3
    for a in (args, rollout_args(RLConfig(vllm_server="http://h:1"), "cpu", [2])[1]):
        cfg = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, num_generations=2,
                         per_device_train_batch_size=2, report_to=[], **a)
        assert cfg.use_vllm and cfg.generation_kwargs == {"stop_token_ids": [2]}
    with pytest.raises(InputError, match="rollouts"):
        rollout_args(RLConfig(rollouts="fast"), "cpu", [2])


def test_rollout_settings_enter_the_manifest_key_only_for_vllm():
    """Where the rollouts run is part of what a run is (vLLM samples differently), but a transformers run keeps the
    key it had before vLLM rollouts existed, so an older finished run is not redone."""
    from tracestyle.distill.config import TrainConfig
    from tracestyle.rl.grpo import RLConfig, rl_conf

    cfg = TrainConfig(student="smollm2-135m")
    plain = rl_conf(cfg, RLConfig())
    assert not any(k in plain for k in ("rl_rollouts", "rl_vllm_server", "rl_vllm_memory"))
    assert rl_conf(cfg, RLConfig(rollouts="transformers", vllm_memory=0.5)) == plain
    served = rl_conf(cfg, RLConfig(vllm_server="http://h:1"), "vllm (server)")
    assert served["rl_rollouts"] == "vllm (server)" and served["rl_vllm_server"] == "http://h:1"
    assert {k: v for k, v in served.items() if not k.startswith(("rl_rollouts", "rl_vllm"))} == plain


def test_rl_threads_chosen_by_a_probe_cached_per_machine(tmp_path, monkeypatch):
    """On a CPU the step's threads are the faster of 1 and every core, timed once (a sampled rollout and its
    backward pass) and kept; the probe leaves the RNG where it was, so samples do not depend on the cache."""
    import torch

    from tracestyle import measured
    from tracestyle.distill.config import TrainConfig
    from tracestyle.distill.models import load_tokenizer
    from tracestyle.distill.sft_hf import build_model
    from tracestyle.rl import thread_choice

    monkeypatch.setattr(measured, "path", lambda name: tmp_path / f"{name}.json")
    monkeypatch.setattr(thread_choice, "PROBE_TOKENS", 4)
    model = build_model(TrainConfig(student="smollm2-135m", dtype="float32"), "cpu")
    tok = load_tokenizer("smollm2-135m")
    torch.manual_seed(3)
    before = torch.get_rng_state()
    threads, why = thread_choice.choose_threads(model, tok, "Question: 2+2?", "smollm2-135m", "float32", 2)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(p.grad is None for p in model.parameters())
    if (os.cpu_count() or 1) > 1:
        secs = why["seconds"]
        assert why["chosen_by"] == "probe" and not why["cached"] and set(secs) == {"1", str(os.cpu_count())}
        assert threads == int(min(secs, key=secs.get)) and all(v > 0 for v in secs.values())
        again = thread_choice.choose_threads(model, tok, "Question: 2+2?", "smollm2-135m", "float32", 2)
        assert again == (threads, {**why, "cached": True})
        assert "smollm2-135m" in next(iter(json.loads((tmp_path / "rl_threads.json").read_text())))
    assert thread_choice.choose_threads(model, tok, "q", "smollm2-135m", "float32", 2, requested=1) == (
        1, {"chosen_by": "requested"})


@pytest.mark.slow
def test_two_step_rl_end_to_end_then_eval_and_rerun(tmp_path, kg_problems):
    train = _problems_file(tmp_path, kg_problems)
    out = tmp_path / "rl"
    args = ("rl", "--problems", str(train), "--out", str(out), "--steps", "2", "--num-generations", "2",
            "--max-new-tokens", "24", "--reward", "answer,kg_path:0.5,repetition:0.1")
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr + r.stdout
    assert (out / "adapter_model.safetensors").exists() and (out / "adapter_config.json").exists()
    cfg = json.loads((out / "train_config.json").read_text())
    assert cfg["recipe"] == "grpo" and cfg["prompt_format"] == "chat"
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows] == [1, 2]
    for x in rows:
        assert 0.0 <= x["zero_spread_groups"] <= 1.0 and x["completion_tokens"] > 0
        assert {"rewards/answer/mean", "rewards/kg_path/mean", "rewards/repetition/mean"} <= set(x)
    man = json.loads((out / "manifest.json").read_text())
    assert man["stage"] == "rl" and man["counts"]["rewards"] == [["answer", 1.0], ["kg_path", 0.5], ["repetition", 0.1]]
    assert man["counts"]["thread_probe"]["chosen_by"] in ("probe", "one core")
    assert not (out / "checkpoints").exists()
    r = run_cli(*args)
    assert r.returncode == 0 and "nothing to do" in r.stdout
    ev = tmp_path / "ev"
    r = run_cli("eval", "--adapter", str(out), "--problems", str(train), "--out", str(ev), "--limit", "2",
                "--max-new-tokens", "16", "--backend", "hf")
    assert r.returncode == 0, r.stderr
    assert len((ev / "eval.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_rl_resumes_after_a_kill(tmp_path, kg_problems):
    train = _problems_file(tmp_path, kg_problems)
    out = tmp_path / "rl"
    args = ["rl", "--problems", str(train), "--out", str(out), "--steps", "3", "--num-generations", "2",
            "--max-new-tokens", "16", "--save-every", "1"]
    proc = cli_process(*args)
    deadline = time.time() + 600
    while time.time() < deadline and not any((out / "checkpoints").glob("checkpoint-*/trainer_state.json")):
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.5)
    proc.kill()
    proc.wait()
    assert not (out / "manifest.json").exists()
    done = max(int(p.parent.name.split("-")[1]) for p in (out / "checkpoints").glob("checkpoint-*/trainer_state.json"))
    assert done < 3
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3], steps            # each step once: the killed run's extra rows were dropped
    assert (out / "manifest.json").exists()


def test_grid_spec_rl_and_transfer_keys(tmp_path):
    from tracestyle.ablations.spec import GridSpec

    def load(text):
        p = tmp_path / "g.yaml"
        p.write_text(text)
        return GridSpec.load(p)

    s = load("task: kg\nregisters: [normal, gold]\nrl:\n  - {name: ans, reward: answer}\n"
             "  - {name: path, reward: 'answer,kg_path:0.5'}\n  - {name: cold, reward: answer, from: base}\n")
    assert s.rl_conditions() == ["normal@ans", "gold@ans", "normal@path", "gold@path", "base@cold"]
    assert load("task: kg\nregisters: [normal]\nrecipe: sft+grpo\nreward: kg_path\n").rl_conditions() == ["normal@grpo"]
    assert load("task: kg\nregisters: [normal]\nrecipe: grpo\n").rl_conditions() == ["base@grpo"]
    # RSFT as a variant beside GRPO: SFT, RSFT and GRPO are cells of one grid
    s = load("task: kg\nregisters: [normal]\nrl:\n  - {name: rs, method: rsft, k: 8, pool_n: 30}\n"
             "  - {name: g, reward: kg_path}\n")
    assert s.rl_conditions() == ["normal@rs", "normal@g"] and s.rl_variants()[0]["k"] == 8
    assert [v["method"] for v in s.rl_variants()] == ["rsft", "grpo"] and "reward" not in s.rl_variants()[0]
    assert [v["name"] for v in s.grpo_variants()] == ["g"]
    for text, key in (("task: kg\nrl:\n  - {name: x, reward: answr}\n", "rl"),
                      ("task: kg\nrl:\n  - {name: 'a b', reward: answer}\n", "rl"),
                      ("task: kg\nrl:\n  - {name: x, reward: answer, from: rsft}\n", "rl"),
                      ("task: kg\nrl:\n  - {name: x, method: ppo}\n", "rl"),
                      ("task: kg\nrl:\n  - {name: x, method: rsft, reward: answer}\n", "rl"),
                      ("task: kg\nrl:\n  - {name: x, method: rsft, k: 0}\n", "rl"),
                      ("task: kg\nrl:\n  - {name: x, reward: answer, k: 4}\n", "rl"),
                      ("task: kg\nrecipe: sft+rsft\nrl:\n  - {name: x, reward: answer}\n", "rl"),
                      ("task: kg\nrecipe: ppo\n", "recipe"), ("task: kg\nrl_generations: 1\n", "rl_generations"),
                      ("task: kg\ntransfer:\n  - {name: w, task: nope}\n", "transfer")):
        with pytest.raises(InputError) as e:
            load(text)
        assert e.value.field == key and e.value.line is not None, (text, e.value)


@pytest.mark.slow
def test_grid_with_grpo_cells_and_a_transfer_set(tmp_path):
    """SFT, SFT+RSFT, SFT+GRPO and GRPO from base in one grid, each also evaluated on GSM8K it never trained on:
    the report holds the GRPO and RSFT tables, the comparison with where each started and between the variants
    from one start, reward curves and the transfer table."""
    spec = tmp_path / "rl.yaml"
    spec.write_text(
        "task: kg\nkg: devops\nregisters: [normal]\nstudents: [smollm2-135m]\ntrain_n: 16\neval_n: 4\n"
        "train_hops: [1, 2]\neval_hops: [2, 3]\nsteps: 2\nbatch_size: 4\nnll_sample: 0\neval_max_new_tokens: 16\n"
        "rl:\n  - {name: ans, reward: answer}\n  - {name: cold, reward: 'answer,kg_path:0.5', from: base}\n"
        "  - {name: rs, method: rsft, k: 2, pool_n: 8}\n"
        "rl_steps: 2\nrl_generations: 2\nrl_max_new_tokens: 16\n"
        f"transfer:\n  - {{name: math, task: gsm8k, data: {Path(__file__).resolve().parents[2] / 'shared/data/gsm8k'}}}\n"
        "transfer_n: 2\n")
    out = tmp_path / "run"
    r = run_cli("grid", str(spec), "--out", str(out))
    assert r.returncode == 0, r.stderr + r.stdout
    sj = json.loads((out / "spec.json").read_text())
    assert sj["conditions"] == ["normal", "normal@ans", "base@cold", "normal@rs"]
    md = (out / "report.md").read_text()
    for title in ("GRPO cells: reward during training", "GRPO and RSFT cells against where they started",
                  "Variants from the same start against each other", "RSFT cells: what rejection sampling drew",
                  "Transfer: accuracy on tasks the students never trained on", "GRPO reward curves"):
        assert title in md, title
    # RSFT started from the register's SFT adapter, sampled 2 for each of 8 pool problems with the evaluation's budget
    man = json.loads((out / "cells/smollm2-135m/normal@rs/seed0/rsft/manifest.json").read_text())
    assert man["config"]["init_adapter"].endswith("normal/seed0/adapter") and man["config"]["k"] == 2
    assert man["config"]["max_new_tokens"] == 16 and man["config"]["pool_n"] == 8
    rs_row = [ln for ln in md.splitlines() if ln.startswith("| smollm2-135m | normal@rs | 0 | SFT adapter | 8 | 2 | 16 |")]
    assert len(rs_row) == 1, md
    pair = [ln for ln in md.splitlines() if ln.startswith("| smollm2-135m | normal@ans | normal@rs |")]
    assert len(pair) == 1, md
    # the curve in text: one mean per step here (2 steps), for each GRPO cell
    curve = [ln for ln in md.splitlines() if ln.startswith("| smollm2-135m | normal@ans | 0 | weighted sum |")]
    assert len(curve) == 1, curve
    reward, zero = [c.strip() for c in curve[0].strip("|").split("|")][4:6]
    assert reward.count("→") == 1 and zero.count("→") == 1, curve
    csv_rows = (out / "results.csv").read_text().splitlines()
    assert all(any(f",{c}," in x for x in csv_rows) for c in ("normal@ans", "base@cold", "normal@rs"))
    assert (out / "cells/smollm2-135m/normal@ans/seed0/rl/adapter_model.safetensors").exists()
    assert (out / "cells/smollm2-135m/normal@ans/seed0/transfer/math/eval.jsonl").exists()
    assert "plot-reward" in (out / "report.html").read_text()
    r = run_cli("grid", str(spec), "--out", str(out))        # a rerun recomputes nothing
    assert r.returncode == 0
    jobs = [json.loads(x) for x in (out / "jobs.jsonl").read_text().splitlines()]
    assert jobs and all(j["skipped"] for j in jobs), [j for j in jobs if not j["skipped"]]
