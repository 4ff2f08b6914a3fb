"""The periodic heap trim gives freed C heap pages back to the kernel."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from appliance.heap import malloc_trim, trim_heap_periodically


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(malloc_trim() is None, reason="glibc only")
async def test_freed_heap_is_returned_while_the_daemon_runs() -> None:
    # What churn leaves: many mid-sized C allocations freed below one still in use, so
    # glibc cannot shrink the heap from its top and keeps the pages.
    blocks = [bytes(4000) for _ in range(10_000)]  # 40 MB, from malloc (over pymalloc's 512 B)
    pin = bytes(4000)
    del blocks
    kept = rss_mb()
    trimmer = trim_heap_periodically(interval=0.05)
    await anext(trimmer)
    try:
        await asyncio.sleep(0.5)
        returned = kept - rss_mb()
    finally:
        with pytest.raises(StopAsyncIteration):
            await anext(trimmer)
    assert returned > 20, f"only {returned:.1f} MB of 40 MB freed went back"
    assert len(pin) == 4000
