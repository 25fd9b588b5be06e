"""Long-lived threads for the couriers' writes (and token look-ups), handed work through one queue.

A write (the database, then the live feed) blocks, so it leaves the event loop; ``asyncio``'s
``run_in_executor`` costs a ``concurrent.futures`` future (with its condition variable), a
pool's thread accounting and two chained futures per call, a visible share of the CPU of a
write on the service's most frequent requests. Here a write is one queue put and one
``call_soon_threadsafe`` back. The threads live as long as the process: what a thread builds
on first use (pyproj's per-thread transformer in the road snapper) is built once.

One thread per process by default (``COURIER_WRITE_THREADS``): a write is mostly Python
holding the GIL, and SQLite takes one writer at a time anyway, so more threads only pass the
GIL back and forth between them at each of a write's waits. Four writes in flight cost 1.00 ms
of CPU each on one thread against 1.24 ms on twenty (``bench_live_inprocess.py``); live, at
250 writes/s, 1.34 against 1.45 ms, and at 1,000/s (with the feed's batched frames) the
slowest messages (p99) took 205-232 ms against 285-338 ms. More threads let writes overlap their waits on PostgreSQL: four
kept up best with one on the same two cores at 1,000 writes/s (one still cost less CPU at
250/s).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple[
    asyncio.AbstractEventLoop, "asyncio.Future[Any]", contextvars.Context, Callable[[], Any]
]


class QueuedThreads:
    """``threads`` daemon threads running blocking callables for coroutines, in arrival order.

    Parameters
    ----------
    threads
        How many callables may run at once.
    name
        The threads' name prefix (seen in profiles and thread dumps).
    """

    def __init__(self, threads: int, name: str) -> None:
        self.threads = threads
        self.name = name
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on one of the threads (in this task's context: its request id); return its result.

        A cancelled caller does not stop a call that began: it completes, unanswered.
        """
        if not self._started:
            self._start()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, fut, contextvars.copy_context(), fn))
        return await fut

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            for k in range(self.threads):
                threading.Thread(target=self._work, name=f"{self.name}_{k}", daemon=True).start()
            self._started = True

    def _work(self) -> None:
        while True:
            loop, fut, ctx, fn = self._queue.get()
            outcome: tuple[Any, BaseException | None]
            try:
                outcome = (ctx.run(fn), None)
            except BaseException as exc:  # handed to the caller, as run_in_executor does
                outcome = (None, exc)
            # the loop may have closed meanwhile (the process is stopping)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, fut, *outcome)
            del loop, fut, ctx, fn, outcome


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.cancelled():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
