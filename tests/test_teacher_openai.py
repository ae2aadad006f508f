"""The openai teacher against a real OpenAI-compatible server (llama.cpp over the bundled SmolLM2-135M)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_twenty_problems_two_registers_kill_resume_and_cached_rerun(tmp_path, llama_server):
    probs = tmp_path / "p.jsonl"
    assert run_cli("problems", "--task", "kg", "--split", "train", "--n", "20", "--out", str(probs)).returncode == 0
    out = tmp_path / "gen"
    args = ["generate", "--problems", str(probs), "--registers", "normal,titanium", "--teacher", "openai",
            "--base-url", llama_server["base_url"], "--model", "smollm2", "--max-tokens", "40",
            "--temperature", "0.7", "--concurrency", "4", "--out", str(out)]
    env = {**os.environ, "TRACESTYLE_QUIET": "1", "OPENAI_API_KEY": "sk-test-never-written-123"}
    proc = subprocess.Popen([sys.executable, "-m", "tracestyle.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cache = out / "cache" / "responses.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and len(_rows(cache)) < 12:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)  # the hardest kind of interruption: no cleanup runs
    proc.wait()
    before = len(cache.read_text().splitlines())
    assert 0 < before < 40 and not (out / "manifest.json").exists()

    r = run_cli(*args, env={"OPENAI_API_KEY": "sk-test-never-written-123"}, timeout=900)
    assert r.returncode == 0, r.stderr
    rows = _rows(out / "traces.jsonl")
    keys = [(x["problem_id"], x["register"], x["sample"]) for x in rows]
    assert len(rows) == 40 and len(set(keys)) == 40, "no duplicates and no losses"
    assert all(isinstance(x["text"], str) and x["text"] for x in rows)
    usage = json.loads((out / "manifest.json").read_text())["usage"]
    assert usage["cache_hits"] >= before - 4 and usage["requests"] <= 40 - before + 4
    assert usage["completion_tokens"] > 0 and usage["failed"] == 0

    # a third run sends 0 requests: skipped by manifest; with the manifest gone, served by the cache
    r = run_cli(*args)
    assert r.returncode == 0 and "nothing to do" in r.stdout
    (out / "manifest.json").unlink()
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    usage = json.loads((out / "manifest.json").read_text())["usage"]
    assert usage["requests"] == 0 and usage["cache_hits"] == 40
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


def _pick(prompt: str, replies: list[str]) -> str:
    """A reply chosen by the prompt's content, the same in the proxy and in the test's expectation."""
    import hashlib

    return replies[int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % len(replies)]


JUDGE_SAYS = {"YES": "ok", "Yes, it follows the register.": "ok", "NO": "judge:noncompliant",
              "no - it has numbered labels": "judge:noncompliant", "Perhaps.": "judge:unparsable"}


def test_llm_judge_compliance_through_the_server(tmp_path, llama_server):
    """The judge's request goes through the real server; its reply text is then set by the proxy per prompt, so
    each row's verdict is known: YES/NO in any case or punctuation, and anything else unparsable."""
    from fault_proxy import FaultProxy

    probs = tmp_path / "p.jsonl"
    assert run_cli("problems", "--task", "kg", "--split", "train", "--n", "8", "--out", str(probs)).returncode == 0
    assert run_cli("generate", "--problems", str(probs), "--registers", "normal,titanium", "--out",
                   str(tmp_path / "g")).returncode == 0
    say = list(JUDGE_SAYS)
    with FaultProxy(llama_server["base_url"], [None], say=lambda prompt: _pick(prompt, say)) as proxy:
        r = run_cli("curate", "--in", str(tmp_path / "g" / "traces.jsonl"), "--task", "kg", "--filters", "judge",
                    "--judge-base-url", proxy.base_url, "--judge-model", "smollm2", "--out", str(tmp_path / "c"))
        assert r.returncode == 0, r.stderr
        assert proxy.count == 16    # one request per trace, in one batch
    rows = _rows(tmp_path / "c" / "kept.jsonl") + _rows(tmp_path / "c" / "dropped.jsonl")
    assert len(rows) == 16
    from tracestyle.curate.teachers.judge import ComplianceJudge
    from tracestyle.prompts import load_registers

    judge = ComplianceJudge(load_registers(["normal", "titanium"]), llama_server["base_url"], "smollm2",
                            api_key_env="OPENAI_API_KEY")
    want = {(x["problem_id"], x["register"]): JUDGE_SAYS[_pick(judge._prompt(x), say)] for x in rows}
    got = {(x["problem_id"], x["register"]): x["checks"]["judge"]["reason"] for x in rows}
    assert got == want and len(set(want.values())) == 3, (got, want)
    kept = {(x["problem_id"], x["register"]) for x in _rows(tmp_path / "c" / "kept.jsonl")}
    assert kept == {k for k, v in want.items() if v == "ok"}, "a judged-noncompliant trace was kept"
    # the cache lives in the curate folder: the same rows are judged again without a request, alike
    judge.prefetch(rows, tmp_path / "c" / "judge_cache.jsonl")
    assert judge.requests == 0 and [judge(x).reason for x in rows] == [x["checks"]["judge"]["reason"] for x in rows]


def test_llm_judge_failure_labels_in_report(tmp_path, llama_server):
    """Failure labels from the judge (through the real server, the reply set per prompt by the proxy): each wrong
    answer gets the category its reply names, an unknown reply is unparsable, and the report tables them."""
    from tracestyle.reports.judge_labels import load_taxonomy, parse_label

    from fault_proxy import FaultProxy
    from test_report_render import _fake_run

    cats = load_taxonomy()
    assert parse_label("Scope_confusion.", cats) == "scope_confusion" and parse_label("???", cats) == "unparsable"
    names = sorted(cats)[:3]
    said = {f"{names[0].capitalize()}.": names[0], f"Category: {names[1]}": names[1], names[2]: names[2],
            "I cannot tell.": "unparsable"}
    say = list(said)
    run = _fake_run(tmp_path / "run")
    with FaultProxy(llama_server["base_url"], [None], say=lambda prompt: _pick(prompt, say)) as proxy:
        r = run_cli("report", str(run), "--judge-base-url", proxy.base_url, "--judge-model", "smollm2")
        assert r.returncode == 0, r.stderr
    every = [x for f in sorted(run.glob("cells/**/judge_labels.jsonl")) for x in _rows(f)]
    assert proxy.count == len(every)    # one request per wrong answer in the run; right ones are not judged
    labels = _rows(run / "cells" / "smollm2-135m" / "base" / "eval" / "judge_labels.jsonl")
    assert len(labels) == 5             # the five wrong answers of the base model
    assert all(x["judge_label"] == said[x["judge_reply"]] for x in every), every
    table = (run / "report.md").read_text().split("LLM-judge failure labels")[1]
    for lab in {x["judge_label"] for x in every}:
        assert lab in table, lab
    assert (run / "judge_cache.jsonl").exists()   # one batch for the whole run, cached in the run folder
