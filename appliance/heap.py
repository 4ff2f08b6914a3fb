"""Hands the C heap's free pages back to the kernel now and then (glibc only).

Every participant that joins and leaves makes and frees a few MB of C allocations (aiortc's
peer connection, OpenSSL and SRTP contexts, packet buffers). Once the participant is gone
the Python objects are freed, but glibc keeps freed memory that is not at the top of one of
its heaps: the daemon's RSS then climbs with churn although nothing is leaked, and under
the unit's ``MemoryMax`` that memory still counts as the daemon's. ``malloc_trim(0)``
returns every whole free page of every arena (docs/performance.md, "Soak", has the figures).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
from collections.abc import AsyncIterator, Callable

from edge_common.lifecycle import TaskSet

log = logging.getLogger("edge_appliance.heap")

#: Seconds between two trims. A trim of the daemon's heap takes a few milliseconds, off the
#: event loop; a churn cycle frees a few MB, so a minute keeps the slack to a few cycles.
TRIM_INTERVAL = 60.0


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None with another C library (musl, macOS)."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


async def trim_heap_periodically(interval: float = TRIM_INTERVAL) -> AsyncIterator[None]:
    """While the daemon runs (the body of a cleanup context): trim the heap every
    ``interval`` seconds, in a worker thread so the event loop does not wait on the walk."""
    trim = malloc_trim()
    if trim is None:
        log.info("no malloc_trim in this C library: the heap is not trimmed")
        yield
        return

    async def run() -> None:
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(trim, 0)

    tasks = TaskSet("heap trim")
    tasks.spawn(run(), name="heap-trim")
    try:
        yield
    finally:
        await tasks.close()
