"""OpenAI-compatible teacher on the `openai` SDK's AsyncOpenAI: bounded concurrency, the SDK's own retries,
timeouts and Retry-After handling for HTTP and connection faults; on top of it what the SDK does not do: retries of
replies that arrive but are unusable (malformed JSON, no choices), rpm/tpm limits per request on the wire, k samples
with a fallback when the server ignores `n`, a content-addressed response cache (a rerun sends 0 requests), and
failed requests kept with their reason."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx2
import openai

from tracestyle.curate.teachers.ratelimit import Bucket
from tracestyle.curate.teachers.transport import MeteredTransport, estimate_tokens, retryable_status
from tracestyle.errors import InputError
from tracestyle.jsonl import AppendLog


def _usage_share(usage: dict | None, n: int) -> dict | None:
    """One choice's share of a response's token usage (a request with n choices reports them together)."""
    if not usage:
        return None
    return {k: round(int(usage.get(k) or 0) / max(1, n), 1) for k in ("prompt_tokens", "completion_tokens")}


@dataclass
class OpenAIConfig:
    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = "smollm2"
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int = 0
    k: int = 1
    n_mode: str = "auto"          # auto: send n=k, fall back to k requests if fewer come back; param; repeat
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    timeout: float = 120.0
    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 30.0

    def sampling(self) -> dict:
        return {"model": self.model, "temperature": self.temperature, "top_p": self.top_p,
                "max_tokens": self.max_tokens, "seed": self.seed}

    def public(self) -> dict:
        return asdict(self)  # holds the env var's *name* only, never the key


def cache_key(messages: list[dict], sampling: dict, sample: int) -> str:
    blob = json.dumps({"messages": messages, "sampling": sampling, "sample": sample}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Job:
    """One prompt that needs k samples; `meta` travels to the output row untouched."""
    messages: list[dict]
    meta: dict


@dataclass
class Stats:
    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    faults: dict = field(default_factory=dict)

    def fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1


class RetryableError(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class FatalError(Exception):
    pass


def _checked(content: bytes) -> dict:
    """The reply's JSON, or a RetryableError naming why it is unusable (a 200 can still be garbage)."""
    try:
        data = json.loads(content)
    except ValueError:
        raise RetryableError("malformed_json") from None
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
        raise RetryableError("empty_choices")
    for ch in data["choices"]:
        msg = ch.get("message") if isinstance(ch, dict) else None
        if not isinstance(msg, dict) or reply_text(msg) is None:
            raise RetryableError("malformed_choice")
    return data


def reply_text(msg: dict) -> str | None:
    """The trace in a reply message. Reasoning servers (vLLM's --reasoning-parser, llama.cpp's --reasoning-format,
    DeepSeek's API) return the thinking apart from the answer, and `content` may be null when the thinking used the
    whole budget: the trace keeps both, the thinking inside <think>…</think> as such models write it, so answer
    extraction reads only what follows it. None: no usable text."""
    content = msg.get("content")
    thinking = msg.get("reasoning_content") or msg.get("reasoning")
    if not isinstance(thinking, str) or not thinking.strip():
        return content if isinstance(content, str) else None
    if content is not None and not isinstance(content, str):
        return None
    return f"<think>\n{thinking.strip()}\n</think>\n\n{(content or '').lstrip()}"


def _sdk_fault(e: openai.APIError) -> str:
    if isinstance(e, openai.APIStatusError):
        return f"http_{e.status_code}"
    if isinstance(e, openai.APITimeoutError):
        return "timeout"
    return "connection:" + type(e.__cause__ or e).__name__


class OpenAITeacher:
    def __init__(self, cfg: OpenAIConfig, cache_path: str | Path,
                 progress: Callable[[int], None] | None = None) -> None:
        self.cfg = cfg
        self.cache_path = Path(cache_path)
        self.progress = progress or (lambda n: None)
        self.stats = Stats()
        self.api_key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
        self._server_ignores_n = cfg.n_mode == "repeat"

    async def _request(self, client: openai.AsyncOpenAI, body: dict, tpm: Bucket) -> dict:
        """One logical request. The SDK retries HTTP and connection faults itself; a reply that arrives but is
        unusable is retried here, and both draw on the same budget of max_retries + 1 attempts."""
        used, last = 0, "unknown"
        while used <= self.cfg.max_retries:
            try:
                raw = await client.with_options(max_retries=self.cfg.max_retries - used) \
                    .chat.completions.with_raw_response.create(**body)
            except openai.APIError as e:
                kind = _sdk_fault(e)
                if isinstance(e, openai.APIStatusError) and not retryable_status(e.status_code):
                    raise FatalError(f"{kind}: {e.response.text[:200]}") from None
                self.stats.retries += self.cfg.max_retries - used
                raise FatalError(f"gave up after {self.cfg.max_retries + 1} attempts: {kind}") from None
            used += raw.retries_taken + 1
            self.stats.retries += raw.retries_taken
            try:
                data = _checked(raw.http_response.content)
            except RetryableError as e:
                last = e.kind
                self.stats.fault(e.kind)
                if used > self.cfg.max_retries:
                    break
                self.stats.retries += 1
                delay = min(self.cfg.backoff_max, self.cfg.backoff_base * 2 ** (used - 1))
                await asyncio.sleep(delay * (0.5 + random.random()))
                continue
            usage = data.get("usage") or {}
            self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)
            est = estimate_tokens(body)
            tpm.refund(max(0, est - int(usage.get("total_tokens") or est)))
            return data
        raise FatalError(f"gave up after {used} attempts: {last}")

    async def _job(self, client, job: Job, *, cache: dict, log: AppendLog, tpm: Bucket,
                   sem: asyncio.Semaphore, results: list, failed: list) -> None:
        sampling = self.cfg.sampling()
        keys = [cache_key(job.messages, sampling, i) for i in range(self.cfg.k)]
        missing = [i for i, key in enumerate(keys) if key not in cache]
        self.stats.cache_hits += self.cfg.k - len(missing)
        async with sem:
            while missing:
                use_n = len(missing) > 1 and not self._server_ignores_n
                idx = missing if use_n else missing[:1]
                body = {"messages": job.messages, **sampling, "seed": self.cfg.seed + idx[0]}
                if use_n:
                    body["n"] = len(idx)
                try:
                    data = await self._request(client, body, tpm)
                except FatalError as e:
                    self.stats.failed += len(missing)
                    for i in missing:
                        failed.append({**job.meta, "sample": i, "reason": str(e), "messages": job.messages})
                    break
                choices = data["choices"]
                if use_n and len(choices) < len(idx):
                    # e.g. llama.cpp's server: n>1 silently gives one choice; from now on, k separate requests
                    self._server_ignores_n = True
                share = _usage_share(data.get("usage"), len(choices))
                for i, ch in zip(idx, choices):
                    rec = {"key": keys[i], "text": reply_text(ch["message"]),
                           "finish_reason": ch.get("finish_reason"), "usage": share}
                    log.append(rec)
                    cache[keys[i]] = rec
                done = set(idx[: len(choices)])
                missing = [i for i in missing if i not in done]
                if self.cfg.n_mode == "param" and use_n and missing:
                    self.stats.failed += len(missing)
                    failed += [{**job.meta, "sample": i, "reason": "server returned fewer choices than n",
                                "messages": job.messages} for i in missing]
                    break
        for i, key in enumerate(keys):
            if key in cache:
                c = cache[key]
                results.append({**job.meta, "sample": i, "text": c["text"], "finish_reason": c.get("finish_reason"),
                                "usage": c.get("usage")})
        self.progress(1)

    async def arun(self, jobs: list[Job]) -> tuple[list[dict], list[dict]]:
        log = AppendLog(self.cache_path)
        cache = {r["key"]: r for r in log.rows if "key" in r and "text" in r}
        rpm, tpm = Bucket(self.cfg.rpm), Bucket(self.cfg.tpm)
        sem = asyncio.Semaphore(self.cfg.concurrency)
        results: list[dict] = []
        failed: list[dict] = []
        http = httpx2.AsyncClient(transport=MeteredTransport(self.stats, rpm, tpm, self.cfg.concurrency))
        # a local server needs no key, but the SDK refuses to start without one
        client = openai.AsyncOpenAI(base_url=self.cfg.base_url.rstrip("/"), api_key=self.api_key or "none",
                                    timeout=httpx2.Timeout(self.cfg.timeout, connect=min(10.0, self.cfg.timeout)),
                                    max_retries=self.cfg.max_retries, http_client=http)
        try:
            async with client:
                await asyncio.gather(*(self._job(client, j, cache=cache, log=log, tpm=tpm, sem=sem,
                                                 results=results, failed=failed)
                                       for j in jobs))
        finally:
            log.close()
        return results, failed

    def run(self, jobs: list[Job]) -> tuple[list[dict], list[dict]]:
        if not self.cfg.base_url.startswith(("http://", "https://")):
            raise InputError(f"base URL '{self.cfg.base_url}' must start with http:// or https://", field="base_url")
        t0 = time.time()
        out = asyncio.run(self.arun(jobs))
        self.elapsed = time.time() - t0
        return out

    def complete_all(self, message_lists: list[list[dict]]) -> list[str | None]:
        """Blocking helper for judges: one completion per message list (None where it failed)."""
        jobs = [Job(m, {"i": i}) for i, m in enumerate(message_lists)]
        results, _ = self.run(jobs)
        by = {r["i"]: r["text"] for r in results if r["sample"] == 0}
        return [by.get(i) for i in range(len(message_lists))]
