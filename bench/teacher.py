"""Teacher client throughput against the local llama.cpp server: our client (concurrency 8) vs plain `AsyncOpenAI`
with a semaphore at the same concurrency (the fair peer: what a user would write by hand) vs the server's
saturation (8 concurrent raw httpx requests); then a cached rerun. Prints JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import free_port, start_llama_server

N, MAX_TOKENS = 24, 48


def messages(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Write one sentence about the number {i}."}]


async def saturate(base: str) -> tuple[int, float]:
    sem = asyncio.Semaphore(8)

    async def one(c, i):
        async with sem:
            r = await c.post("/chat/completions", json={"model": "smollm2", "messages": messages(i),
                                                        "max_tokens": MAX_TOKENS, "temperature": 0.7, "seed": i})
            return r.json()["usage"]["completion_tokens"]
    t0 = time.time()
    async with httpx.AsyncClient(base_url=base, timeout=300) as c:
        toks = await asyncio.gather(*(one(c, i) for i in range(N)))
    return sum(toks), time.time() - t0


async def async_openai_peer(base: str) -> tuple[int, float]:
    from openai import AsyncOpenAI

    sem = asyncio.Semaphore(8)

    async def one(client, i):
        async with sem:
            r = await client.chat.completions.create(model="smollm2", messages=messages(i), max_tokens=MAX_TOKENS,
                                                     temperature=0.7, seed=i)
            return r.usage.completion_tokens
    t0 = time.time()
    async with AsyncOpenAI(base_url=base, api_key="none", timeout=300) as client:
        toks = await asyncio.gather(*(one(client, i) for i in range(N)))
    return sum(toks), time.time() - t0


def main() -> None:

    from tracestyle.curate.teachers.openai_client import Job, OpenAIConfig, OpenAITeacher

    proc, base = start_llama_server(free_port(), timeout=240)
    try:
        out = {}
        toks, secs = asyncio.run(saturate(base))
        out["saturation_tokens_per_s"] = toks / secs
        toks, secs = asyncio.run(async_openai_peer(base))
        out["async_openai_tokens_per_s"] = toks / secs
        cache = Path(tempfile.mkdtemp()) / "cache.jsonl"
        cfg = OpenAIConfig(base_url=base, model="smollm2", max_tokens=MAX_TOKENS, concurrency=8)
        t = OpenAITeacher(cfg, cache)
        t.run([Job(messages(i), {"i": i}) for i in range(N)])
        out["ours_tokens_per_s"] = t.stats.completion_tokens / t.elapsed
        # cached rerun over 1,000 rows: 0 requests
        jobs = [Job(messages(i % N), {"i": i}) for i in range(1000)]
        t2 = OpenAITeacher(cfg, cache)
        t2.run(jobs)
        out["cached_rerun_seconds_per_1000"] = t2.elapsed
        out["cached_rerun_requests"] = t2.stats.requests
        out["ratio_teacher_vs_saturation"] = out["ours_tokens_per_s"] / out["saturation_tokens_per_s"]
        out["ratio_teacher_vs_async_openai"] = out["ours_tokens_per_s"] / out["async_openai_tokens_per_s"]
        print(json.dumps(out))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
