"""Requests/min and tokens/min limits as token buckets shared by all concurrent requests."""

from __future__ import annotations

import asyncio
import time


class Bucket:
    """`clock` and `sleep` are the time source and the wait (tests pass a fake clock: pacing is then exact)."""

    def __init__(self, per_minute: float | None, *, clock=time.monotonic, sleep=asyncio.sleep) -> None:
        self.rate = (per_minute or 0) / 60.0
        self.capacity = per_minute or 0
        self.level = float(self.capacity)
        self.clock, self.sleep = clock, sleep
        self.stamp = clock()
        self.lock = asyncio.Lock()

    async def take(self, amount: float = 1.0) -> None:
        if self.rate <= 0:
            return
        amount = min(amount, self.capacity)  # one request larger than a minute's budget still goes, alone
        async with self.lock:
            while True:
                now = self.clock()
                self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.level >= amount:
                    self.level -= amount
                    return
                await self.sleep((amount - self.level) / self.rate)

    def refund(self, amount: float) -> None:
        if self.rate > 0:
            self.level = min(self.capacity, self.level + amount)
