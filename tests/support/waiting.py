"""The one way a test waits for something to become true (async and thread flavours)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


def _failure(what: str, check: Any, timeout: float, last: Any) -> AssertionError:
    return AssertionError(f"timed out after {timeout} s waiting for {what or check}: {last!r:.300}")


async def wait_for(
    check: Callable[[], Any],
    until: Callable[[Any], Any] = bool,
    timeout: float = 20.0,
    what: str = "",
    interval: float = 0.1,
) -> Any:
    """Call ``check`` (sync or async) until ``until(result)`` holds; return that result.

    Fails with an ``AssertionError`` naming ``what`` and the last result on timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise _failure(what, check, timeout, result)
        await asyncio.sleep(interval)


def wait_for_sync(
    check: Callable[[], Any],
    until: Callable[[Any], Any] = bool,
    timeout: float = 20.0,
    what: str = "",
    interval: float = 0.1,
) -> Any:
    """:func:`wait_for` for code outside an event loop (threads, subprocess-driven tests)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise _failure(what, check, timeout, result)
        time.sleep(interval)
