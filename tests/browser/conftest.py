"""Browser tests end on their own time limit by cancellation, not by a signal.

pytest-timeout's signal raises its failure in whatever Python code runs when the alarm
comes. In an asyncio test that is often a callback or another task (Playwright's reader of
its driver's pipe, say), where the loop logs it and goes on: the test was not stopped, the
Playwright connection was gone, and the next await on it never returned (the whole suite
hung for over half an hour behind one page that had stalled for five minutes). So each
async browser test is run under ``asyncio.wait_for`` with a budget a little under its
timeout: past it the test's own task is cancelled at its await, its ``finally`` and
``async with`` blocks close browsers, rooms and the SFU, and it fails saying so.
pytest-timeout stays as the backstop should even that clean-up hang.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

#: Seconds the budget leaves before pytest-timeout's limit, for the clean-up to finish.
CLEANUP_MARGIN_S = 30.0


def _limit(item: pytest.Item) -> float | None:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    value = item.config.getini("timeout")
    return float(value) if value else None


def _budgeted(
    test: Callable[..., Awaitable[Any]], budget: float, name: str
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.wait_for(test(*args, **kwargs), budget)
        except TimeoutError:
            pytest.fail(f"{name} ran past its budget of {budget:.0f} s and was cancelled")

    return run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each coroutine test under tests/browser its budget (``_budgeted``)."""
    for item in items:
        test = getattr(item, "obj", None)
        if not isinstance(item, pytest.Function) or not inspect.iscoroutinefunction(test):
            continue
        if "tests/browser/" not in item.nodeid and not item.nodeid.startswith("browser/"):
            continue
        limit = _limit(item)
        if limit is None or limit <= 0:
            continue
        budget = max(limit - CLEANUP_MARGIN_S, 0.8 * limit)
        item.obj = _budgeted(test, budget, item.name)
