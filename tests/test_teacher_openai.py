"""The openai teacher against a real OpenAI-compatible server (llama.cpp over the bundled SmolLM2-135M)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.server]


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_fifty_problems_two_registers_kill_resume_and_cached_rerun(tmp_path, llama_server):
    probs = tmp_path / "p.jsonl"
    assert run_cli("problems", "--task", "kg", "--split", "train", "--n", "50", "--out", str(probs)).returncode == 0
    out = tmp_path / "gen"
    args = ["generate", "--problems", str(probs), "--registers", "normal,titanium", "--teacher", "openai",
            "--base-url", llama_server["base_url"], "--model", "smollm2", "--max-tokens", "40",
            "--temperature", "0.7", "--concurrency", "4", "--out", str(out)]
    env = {**os.environ, "TRACESTYLE_QUIET": "1", "OPENAI_API_KEY": "sk-test-never-written-123"}
    proc = subprocess.Popen([sys.executable, "-m", "tracestyle.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cache = out / "cache" / "responses.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and len(_rows(cache)) < 25:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)  # the hardest kind of interruption: no cleanup runs
    proc.wait()
    before = len(cache.read_text().splitlines())
    assert 0 < before < 100 and not (out / "manifest.json").exists()

    r = run_cli(*args, env={"OPENAI_API_KEY": "sk-test-never-written-123"}, timeout=900)
    assert r.returncode == 0, r.stderr
    rows = _rows(out / "traces.jsonl")
    keys = [(x["problem_id"], x["register"], x["sample"]) for x in rows]
    assert len(rows) == 100 and len(set(keys)) == 100, "no duplicates and no losses"
    assert all(isinstance(x["text"], str) and x["text"] for x in rows)
    usage = json.loads((out / "manifest.json").read_text())["usage"]
    assert usage["cache_hits"] >= before - 4 and usage["requests"] <= 100 - before + 4
    assert usage["completion_tokens"] > 0 and usage["failed"] == 0

    # a third run sends 0 requests: skipped by manifest; with the manifest gone, served by the cache
    r = run_cli(*args)
    assert r.returncode == 0 and "nothing to do" in r.stdout
    (out / "manifest.json").unlink()
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    usage = json.loads((out / "manifest.json").read_text())["usage"]
    assert usage["requests"] == 0 and usage["cache_hits"] == 100
    assert _rows(out / "traces.jsonl") == rows

    secret = "sk-test-never-written-123"
    for p in out.rglob("*"):
        if p.is_file():
            assert secret not in p.read_text(errors="ignore"), p


def test_k_samples_when_server_ignores_n(tmp_path, llama_server):
    from tracestyle.curate.teachers.openai_client import Job, OpenAIConfig, OpenAITeacher

    cfg = OpenAIConfig(base_url=llama_server["base_url"], model="smollm2", k=3, max_tokens=16, temperature=1.0)
    t = OpenAITeacher(cfg, tmp_path / "c.jsonl")
    jobs = [Job([{"role": "user", "content": f"Name a colour number {i}."}], {"i": i}) for i in range(2)]
    results, failed = t.run(jobs)
    assert not failed and len(results) == 6
    assert sorted((r["i"], r["sample"]) for r in results) == [(i, s) for i in range(2) for s in range(3)]
    assert len({r["text"] for r in results if r["i"] == 0}) >= 2, "separate seeds give separate samples"


def test_llm_judge_compliance_through_the_server(tmp_path, llama_server):
    """The judge is a real model: its verdicts are whatever it says, parsed into ok / noncompliant / unparsable."""
    probs = tmp_path / "p.jsonl"
    assert run_cli("problems", "--task", "kg", "--split", "train", "--n", "3", "--out", str(probs)).returncode == 0
    assert run_cli("generate", "--problems", str(probs), "--registers", "normal", "--out",
                   str(tmp_path / "g")).returncode == 0
    r = run_cli("curate", "--in", str(tmp_path / "g" / "traces.jsonl"), "--task", "kg", "--filters", "judge",
                "--judge-base-url", llama_server["base_url"], "--judge-model", "smollm2", "--out", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    rows = _rows(tmp_path / "c" / "kept.jsonl") + _rows(tmp_path / "c" / "dropped.jsonl")
    assert len(rows) == 3
    assert all(x["checks"]["judge"]["reason"] in ("ok", "judge:noncompliant", "judge:unparsable") for x in rows)
    # one batch, its cache inside the curate folder: a second curate elsewhere reuses nothing, the same one all
    cache = _rows(tmp_path / "c" / "judge_cache.jsonl")
    assert len([x for x in cache if "text" in x]) == 3
    from tracestyle.curate.teachers.judge import ComplianceJudge
    from tracestyle.prompts import load_registers

    judge = ComplianceJudge(load_registers(["normal"]), llama_server["base_url"], "smollm2",
                            api_key_env="OPENAI_API_KEY")
    judge.prefetch(rows, tmp_path / "c" / "judge_cache.jsonl")
    assert judge.requests == 0 and [judge(x).reason for x in rows] == [x["checks"]["judge"]["reason"] for x in rows]


def test_llm_judge_failure_labels_in_report(tmp_path, llama_server):
    from tracestyle.reports.judge_labels import load_taxonomy, parse_label

    from test_report_render import _fake_run

    cats = load_taxonomy()
    assert parse_label("Scope_confusion.", cats) == "scope_confusion" and parse_label("???", cats) == "unparsable"
    run = _fake_run(tmp_path / "run")
    r = run_cli("report", str(run), "--judge-base-url", llama_server["base_url"], "--judge-model", "smollm2")
    assert r.returncode == 0, r.stderr
    labels = _rows(run / "cells" / "smollm2-135m" / "base" / "eval" / "judge_labels.jsonl")
    assert len(labels) == 5  # the five wrong answers of the base model; correct ones are not judged
    assert all(x["judge_label"] in set(cats) | {"unparsable"} for x in labels)
    assert "LLM-judge failure labels" in (run / "report.md").read_text()
    assert (run / "judge_cache.jsonl").exists()   # one batch for the whole run, cached in the run folder
