"""The HTTP layer under AsyncOpenAI. Every attempt the SDK makes, its own retries included, passes through here,
so the rpm/tpm limits apply to requests on the wire (a retry storm cannot break a provider's limit) and each
fault is counted by kind for the manifest."""

from __future__ import annotations

import json

import httpx2  # the openai SDK's HTTP library (openai>=3); its client must be built on the same one

from tracestyle.curate.teachers.ratelimit import Bucket

# what the SDK retries by itself (408, 409, 429, 5xx); kept in step with it so a fault here is a retried one
RETRY_STATUS = frozenset({408, 409, 429})


def retryable_status(code: int) -> bool:
    return code in RETRY_STATUS or code >= 500


def estimate_tokens(body: dict) -> int:
    """What a request may cost against a tokens/min limit before the server says: the completion cap for every
    choice plus ~4 characters per prompt token. The caller refunds the difference once usage comes back."""
    chars = sum(len(str(m.get("content", ""))) for m in body.get("messages") or [] if isinstance(m, dict))
    return int(body.get("max_tokens") or 0) * int(body.get("n") or 1) + chars // 4


class MeteredTransport(httpx2.AsyncBaseTransport):
    def __init__(self, stats, rpm: Bucket, tpm: Bucket, concurrency: int) -> None:
        self.stats, self.rpm, self.tpm = stats, rpm, tpm
        limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.inner = httpx2.AsyncHTTPTransport(limits=limits)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            body = json.loads(request.content or b"{}")
        except (ValueError, httpx2.RequestNotRead):
            body = {}
        await self.rpm.take(1)
        await self.tpm.take(estimate_tokens(body) if isinstance(body, dict) else 0)
        self.stats.requests += 1
        try:
            resp = await self.inner.handle_async_request(request)
        except httpx2.TimeoutException:
            self.stats.fault("timeout")
            raise
        except (httpx2.TransportError, OSError) as e:
            self.stats.fault("connection:" + type(e).__name__)
            raise
        if retryable_status(resp.status_code):
            self.stats.fault(f"http_{resp.status_code}")
        return resp

    async def aclose(self) -> None:
        await self.inner.aclose()
