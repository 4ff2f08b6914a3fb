"""Close-once with the user/parent distinction, and the task set."""

from __future__ import annotations

import asyncio
import logging

import pytest

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
