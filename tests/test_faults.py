"""The openai teacher behind a fault-injecting proxy in front of the real llama.cpp server."""

import json

import pytest

from tracestyle.curate.generate import Teacher, generate
from tracestyle.curate.teachers.openai_client import OpenAIConfig
from tracestyle.prompts import load_registers
from tracestyle.tasks.kg.questions import generate_kg_problems

from fault_proxy import FAULTS, RESHAPES, FaultProxy

pytestmark = pytest.mark.slow


def _run(tmp_path, base_url, n=6, retries=10):
    probs = generate_kg_problems("devops", "train", n, 5)
    cfg = OpenAIConfig(base_url=base_url, model="smollm2", max_tokens=8, temperature=0.0, concurrency=2,
                       timeout=10.0, max_retries=retries, backoff_base=0.05, backoff_max=0.2)
    res = generate(probs, load_registers(["normal"]), tmp_path, Teacher("openai", cfg), quiet=True)
    rows = [json.loads(x) for x in (tmp_path / "traces.jsonl").read_text().splitlines()]
    failed = [json.loads(x) for x in (tmp_path / "failed.jsonl").read_text().splitlines()]
    return res, rows, failed


def test_every_fault_is_retried_and_nothing_is_lost(tmp_path, llama_server):
    # each fault kind once, then a pass-through, in rotation
    schedule = [x for f in FAULTS for x in (f, None)]
    with FaultProxy(llama_server["base_url"], schedule) as proxy:
        res, rows, failed = _run(tmp_path, proxy.base_url, n=10)
    assert set(proxy.injected) == set(FAULTS), proxy.injected
    assert len(rows) == 10 and not failed
    assert len({r["problem_id"] for r in rows}) == 10
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["counts"]["rows"] == len(rows) and man["counts"]["failed"] == 0
    faults = man["usage"]["faults"]
    for kind in ("http_429", "http_500", "http_503", "timeout", "malformed_json", "empty_choices"):
        assert faults.get(kind, 0) >= 1, (kind, faults)
    assert any(k.startswith("connection") for k in faults), faults
    assert man["usage"]["retries"] >= len(FAULTS)


def test_reasoning_replies_keep_the_thinking_and_score_the_answer_after_it(tmp_path, llama_server):
    """A reasoning server's reply (thinking in `reasoning_content`, `content` the answer or null): the trace keeps
    both, the thinking in <think>…</think>; the answer is read after it, and a reply that never left its thinking
    has no answer (never a number or name met while thinking)."""
    from tracestyle.tasks import task_of

    with FaultProxy(llama_server["base_url"], RESHAPES) as proxy:
        res, rows, failed = _run(tmp_path, proxy.base_url, n=4)
    assert len(rows) == 4 and not failed and proxy.injected == {"reasoning": 2, "reasoning_only": 2}
    probs = {p["id"]: p for p in generate_kg_problems("devops", "train", 4, 5)}
    kinds = {"answered": 0, "thinking_only": 0}
    for r in rows:
        assert r["text"].startswith("<think>\n") and "\n</think>\n\n" in r["text"]
        thought, after = r["text"][len("<think>\n"):].split("\n</think>\n\n")
        assert thought.strip()                               # the model's own words, kept
        v = task_of(probs[r["problem_id"]]).check_answer(probs[r["problem_id"]], r["text"])
        if after:
            kinds["answered"] += 1
            assert after == "ANSWER: SRE team" and v.extracted == "SRE team"
        else:
            kinds["thinking_only"] += 1
            assert v.reason == "no_answer"
    assert kinds == {"answered": 2, "thinking_only": 2}


def test_permanent_failure_is_recorded_with_reason(tmp_path, llama_server):
    with FaultProxy(llama_server["base_url"], ["503"]) as proxy:
        res, rows, failed = _run(tmp_path, proxy.base_url, n=3, retries=2)
    assert not rows and len(failed) == 3
    assert all("gave up after 3 attempts: http_503" in f["reason"] for f in failed)
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["counts"]["failed"] == 3 and man["usage"]["failed"] == 3 and proxy.count == 9
    assert man["complete"] is False
    # the server comes back: the same rerun is not skipped, and retries only what failed
    res, rows, failed = _run(tmp_path, llama_server["base_url"], n=3)
    assert len(rows) == 3 and not failed


def test_rate_limits_draw_on_every_request_on_the_wire(tmp_path, llama_server, monkeypatch):
    """AsyncOpenAI retries inside one call; the rpm/tpm buckets sit under it, in the transport, so each retry
    draws on the limits as the provider counts it, not once per logical request."""
    from tracestyle.curate.teachers import transport
    from tracestyle.curate.teachers.ratelimit import Bucket

    taken: list[tuple[float, float]] = []

    class CountingBucket(Bucket):
        async def take(self, amount: float = 1.0) -> None:
            taken.append((self.capacity, amount))
            await super().take(amount)

    monkeypatch.setattr("tracestyle.curate.teachers.openai_client.Bucket", CountingBucket)
    spent = []
    monkeypatch.setattr(transport, "estimate_tokens", lambda body: spent.append(body) or 100)
    probs = generate_kg_problems("devops", "train", 3, 5)
    cfg = OpenAIConfig(base_url="", model="smollm2", max_tokens=8, temperature=0.0, concurrency=1,
                       timeout=30.0, max_retries=4, rpm=6000, tpm=600000)
    with FaultProxy(llama_server["base_url"], ["500", None]) as proxy:
        cfg.base_url = proxy.base_url
        generate(probs, load_registers(["normal"]), tmp_path, Teacher("openai", cfg), quiet=True)
    rpm_takes = [a for cap, a in taken if cap == 6000]
    tpm_takes = [a for cap, a in taken if cap == 600000]
    assert proxy.count == 6 and proxy.injected == {"500": 3}
    assert rpm_takes == [1] * 6 and tpm_takes == [100] * 6
    assert all(b["max_tokens"] == 8 and b["messages"] for b in spent), "the estimate sees the request body"
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["usage"]["requests"] == 6 and man["usage"]["retries"] == 3 and man["usage"]["faults"] == {"http_500": 3}
