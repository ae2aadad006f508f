"""Requests/min and tokens/min limits as token buckets shared by all concurrent requests."""

from __future__ import annotations

import asyncio
import time


class Bucket:
    def __init__(self, per_minute: float | None) -> None:
        self.rate = (per_minute or 0) / 60.0
        self.capacity = per_minute or 0
        self.level = float(self.capacity)
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, amount: float = 1.0) -> None:
        if self.rate <= 0:
            return
        amount = min(amount, self.capacity)  # one request larger than a minute's budget still goes, alone
        async with self.lock:
            while True:
                now = time.monotonic()
                self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)

    def refund(self, amount: float) -> None:
        if self.rate > 0:
            self.level = min(self.capacity, self.level + amount)
