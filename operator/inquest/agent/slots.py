"""Per-provider concurrency: at most ``maxConcurrentInvestigations`` runs at once, the rest wait in
FIFO order (their Investigations stay Pending with reason Queued)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class ProviderSlots:
    """A FIFO semaphore whose size may change between acquisitions (the provider's spec may)."""

    def __init__(self) -> None:
        self.active = 0
        self.limit = 1
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    def _wake(self) -> None:
        while self._waiters and self.active < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.active += 1
                waiter.set_result(None)

    async def acquire(self, limit: int, on_queued: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.limit = max(1, int(limit))
        if self.active < self.limit and not self.waiting:
            self.active += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._wake()  # the limit may have grown
        try:
            if not waiter.done() and on_queued is not None:
                await on_queued(self.waiting)
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was handed over as we were cancelled: give it back
            else:
                waiter.cancel()
            raise

    def release(self) -> None:
        self.active = max(0, self.active - 1)
        self._wake()

    @asynccontextmanager
    async def hold(self, limit: int, on_queued: Callable[[int], Awaitable[None]] | None = None
                   ) -> AsyncIterator[None]:
        await self.acquire(limit, on_queued)
        try:
            yield
        finally:
            self.release()
