"""Close-once with the user/parent distinction, and the task set."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from edge_common import lifecycle
from edge_common.lifecycle import AsyncCloseable, Closeable, TaskSet


class Child(Closeable):
    def __init__(self) -> None:
        super().__init__()
        self.released = 0

    def _on_close(self) -> None:
        self.released += 1


class Parent(Closeable):
    def __init__(self) -> None:
        super().__init__()
        self.children: list[Child] = []
        self.called_back: list[Child] = []

    def add(self) -> Child:
        child = Child()
        self.children.append(child)
        child.on_close(self.called_back.append, parent=self)
        return child

    def _on_close(self) -> None:
        for child in self.children:
            child.close_from_parent(self)


def test_close_runs_once_and_calls_every_listener() -> None:
    child = Child()
    seen: list[str] = []
    child.on_close(lambda c: seen.append("observer"))
    child.on_close(lambda c: seen.append("owner"), parent=object())
    child.close()
    child.close()
    assert child.closed and child.closed_by is None
    assert child.released == 1
    assert seen == ["observer", "owner"]


def test_user_close_of_a_child_calls_its_parent_back() -> None:
    parent = Parent()
    child = parent.add()
    child.close()
    assert parent.called_back == [child]


def test_parent_closed_child_does_not_call_the_parent_back() -> None:
    parent = Parent()
    child = parent.add()
    other: list[Child] = []
    child.on_close(other.append)
    parent.close()
    assert child.closed and child.closed_by is parent and child.released == 1
    assert parent.called_back == []  # the closing parent is not re-entered
    assert other == [child]  # anybody else still hears of it


def test_a_failing_listener_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    child = Child()
    seen: list[Child] = []

    def broken(_: Child) -> None:
        raise RuntimeError("boom")

    child.on_close(broken)
    child.on_close(seen.append)
    with caplog.at_level(logging.ERROR):
        child.close()
    assert seen == [child]
    assert "close listener" in caplog.text


def test_listener_added_after_close_is_not_called() -> None:
    child = Child()
    child.close()
    seen: list[Child] = []
    child.on_close(seen.append)
    child.close()
    assert seen == []


class AsyncThing(AsyncCloseable):
    def __init__(self) -> None:
        super().__init__()
        self.released = 0

    async def _on_close(self) -> None:
        await asyncio.sleep(0)
        self.released += 1


async def test_async_closeable_closes_once_even_when_closed_concurrently() -> None:
    thing = AsyncThing()
    parent = object()
    seen: list[str] = []
    thing.on_close(lambda t: seen.append("owner"), parent=parent)
    thing.on_close(lambda t: seen.append("observer"))
    await asyncio.gather(thing.close_from_parent(parent), thing.close())
    assert thing.released == 1 and thing.closed_by is parent
    assert seen == ["observer"]


async def test_task_set_close_cancels_and_awaits() -> None:
    tasks = TaskSet("test")
    cleaned: list[str] = []
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            cleaned.append("done")

    task = tasks.spawn(forever())
    await started.wait()
    assert len(tasks) == 1
    await tasks.close()
    assert task.cancelled() and cleaned == ["done"] and len(tasks) == 0


async def test_task_set_forgets_finished_tasks_and_logs_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = TaskSet("test")

    async def fail() -> None:
        raise ValueError("bad")

    async def ok() -> int:
        return 1

    with caplog.at_level(logging.ERROR):
        failing = tasks.spawn(fail(), name="failing")
        fine = tasks.spawn(ok())
        await asyncio.wait([failing, fine])
        await asyncio.sleep(0)
    assert len(tasks) == 0 and fine.result() == 1
    assert "failing" in caplog.text and "bad" in caplog.text
    await tasks.close()


async def test_task_set_close_also_stops_tasks_spawned_during_close() -> None:
    tasks = TaskSet("test")
    late: list[asyncio.Task[None]] = []

    async def spawns_on_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            late.append(tasks.spawn(asyncio.sleep(3600)))

    tasks.spawn(spawns_on_cancel())
    await asyncio.sleep(0)
    await tasks.close()
    assert late and late[0].cancelled() and len(tasks) == 0


async def test_task_set_cancel_cancels_without_waiting() -> None:
    tasks = TaskSet("test")
    cleaned: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append("done")

    task = tasks.spawn(forever())
    await asyncio.sleep(0)
    tasks.cancel()
    assert cleaned == [] and not task.done()  # only asked to stop, nothing awaited yet
    await asyncio.wait([task])
    await asyncio.sleep(0)
    assert task.cancelled() and cleaned == ["done"] and len(tasks) == 0


# -- every: periodic calls on a timer shared per loop and period -------------------------

PERIOD = 0.005


def metronome_timers(loop: asyncio.AbstractEventLoop) -> int:
    """How many shared periodic timers are pending on ``loop``."""
    scheduled: list[Any] = loop._scheduled  # type: ignore[attr-defined]
    ticks = [
        handle
        for handle in scheduled
        if not handle.cancelled()
        and getattr(handle._callback, "__qualname__", "") == "_Metronome._tick"
    ]
    return len(ticks)


async def until(condition: Callable[[], bool], limit_s: float = 5.0) -> None:
    """Let the loop run until ``condition()`` holds (``limit_s`` only stops a broken test)."""
    async with asyncio.timeout(limit_s):
        while not condition():
            await asyncio.sleep(PERIOD)


async def test_every_shares_one_timer_per_period_and_calls_in_registration_order() -> None:
    loop = asyncio.get_running_loop()
    first, second, other = TaskSet("first"), TaskSet("second"), TaskSet("other")
    calls: list[str] = []
    first.every(PERIOD, lambda: calls.append("a"))
    second.every(PERIOD, lambda: calls.append("b"))
    assert metronome_timers(loop) == 1  # both on the one timer
    other.every(PERIOD * 3, lambda: calls.append("slow"))
    assert metronome_timers(loop) == 2  # another period, another timer
    await until(lambda: calls.count("a") >= 6)
    fast = [c for c in calls if c != "slow"]
    # every tick calls both, in the order they registered
    assert fast[: len(fast) // 2 * 2] == ["a", "b"] * (len(fast) // 2)
    assert 0 < calls.count("slow") < calls.count("a")
    await first.close()
    second.cancel()
    assert metronome_timers(loop) == 1  # the shorter period's timer stopped with its last
    await other.close()
    assert metronome_timers(loop) == 0
    assert loop not in lifecycle._METRONOMES  # idle ones are forgotten (they hold the loop)


async def test_every_stops_at_cancel_or_close_and_a_failure_is_logged_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    failing, steady, stopped = TaskSet("failing"), TaskSet("steady"), TaskSet("stopped")
    counts = {"failing": 0, "steady": 0, "stopped": 0}

    def fail() -> None:
        counts["failing"] += 1
        raise ValueError("tick broke")

    def count(name: str) -> None:
        counts[name] += 1

    with caplog.at_level(logging.ERROR):
        failing.every(PERIOD, fail)
        stopped.every(PERIOD, lambda: count("stopped"))
        steady.every(PERIOD, lambda: count("steady"))
        await until(lambda: counts["stopped"] >= 2)
        stopped.cancel()
        at_cancel = counts["stopped"]
        await until(lambda: counts["steady"] >= at_cancel + 4)
    assert counts["stopped"] == at_cancel  # never called after cancel
    assert counts["failing"] >= 4  # a failure does not cost it its place
    assert "tick broke" in caplog.text
    await failing.close()
    await steady.close()
    assert metronome_timers(loop) == 0


async def test_every_tolerates_changes_from_inside_a_tick() -> None:
    loop = asyncio.get_running_loop()
    owner, victim, late = TaskSet("owner"), TaskSet("victim"), TaskSet("late")
    calls: list[str] = []

    def owner_tick() -> None:
        calls.append("owner")
        if calls.count("owner") == 2:
            victim.cancel()  # removes one registered after it, in this very tick
            late.every(PERIOD, lambda: calls.append("late"))
        if calls.count("owner") == 4:
            owner.cancel()  # removes itself

    owner.every(PERIOD, owner_tick)
    victim.every(PERIOD, lambda: calls.append("victim"))
    await until(lambda: calls.count("late") >= 4)
    # the victim ran in the first tick only; the late one from the tick after it came
    assert calls[:3] == ["owner", "victim", "owner"]
    assert calls.count("victim") == 1 and calls.count("owner") == 4
    assert calls[3] in ("owner", "late")
    await late.close()
    assert metronome_timers(loop) == 0


async def test_close_also_stops_periodic_calls_registered_while_it_waits() -> None:
    loop = asyncio.get_running_loop()
    tasks = TaskSet("test")

    async def registers_on_cancel() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            tasks.every(PERIOD, lambda: None)

    tasks.spawn(registers_on_cancel())
    await asyncio.sleep(0)
    await tasks.close()
    assert metronome_timers(loop) == 0
