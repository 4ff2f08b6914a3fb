"""The service notifier against a real notify socket, through the real systemd-python.

A thread keeps reading the socket for the whole test: about ten unread datagrams make the
next ``sd_notify`` block while holding the GIL, which would freeze the test process. The
thread also keeps reading while a test deliberately blocks the event loop, so the pings it
counts are exactly the ones the loop sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from appliance.service_manager import ServiceNotifier, watchdog_interval

pytest.importorskip("systemd.daemon")

from tests.support.notify import NotifySocket


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    reader = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(reader.path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        yield reader
    finally:
        reader.close()


@asynccontextmanager
async def started(notifier: ServiceNotifier) -> AsyncIterator[ServiceNotifier]:
    """``notifier`` started for the block, closed after it."""
    await notifier.start()
    try:
        yield notifier
    finally:
        await notifier.close()


async def pings_reach(notify_socket: NotifySocket, count: int) -> bool:
    """Whether ``count`` watchdog pings arrive within the socket's wait (off the event loop)."""
    return await asyncio.to_thread(notify_socket.wait_for, lambda: notify_socket.pings() >= count)


async def test_ready_status_and_stopping_arrive(notify_socket: NotifySocket) -> None:
    notifier = ServiceNotifier()
    assert notifier.enabled and notifier.watchdog_timeout is None
    assert notifier.ready("Serving on :8080")
    assert notifier.status("In call\nBoardroom")  # a newline must not split the message
    assert notifier.extend_timeout(2.5)
    assert notifier.stopping("Shutting down")
    expected = [
        "READY=1\nSTATUS=Serving on :8080",
        "STATUS=In call Boardroom",
        "EXTEND_TIMEOUT_USEC=2500000",
        "STOPPING=1\nSTATUS=Shutting down",
    ]
    assert notify_socket.wait_for(lambda: len(notify_socket.all()) >= 4)
    assert notify_socket.all() == expected
    await notifier.start()  # no watchdog configured: start and close are no-ops
    await notifier.close()


async def test_many_status_updates_do_not_freeze(notify_socket: NotifySocket) -> None:
    notifier = ServiceNotifier()
    for i in range(200):
        notifier.status(f"step {i}")
        if i % 8 == 7:  # keep the queue short, as systemd would
            notify_socket.wait_for(lambda i=i: len(notify_socket.all()) > i - 4, timeout=5)
    assert notify_socket.wait_for(lambda: len(notify_socket.all()) == 200)


async def test_watchdog_pings_at_half_the_interval_and_stop_when_the_loop_stalls(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # 0.2 s: ping every 0.1 s
    notifier = ServiceNotifier()
    assert notifier.watchdog_timeout == pytest.approx(0.2)
    assert notifier.ping_interval == pytest.approx(0.1)
    async with started(notifier):
        await asyncio.sleep(1.0)
        running = notify_socket.pings()
        # ~10 expected; generous bounds for a loaded machine, but clearly periodic.
        assert 3 <= running <= 15, running

        before_stall = notify_socket.pings()
        time.sleep(1.5)  # a stalled event loop: several watchdog timeouts without yielding
        during_stall = notify_socket.pings() - before_stall
        # At most one ping that was already on its way when the stall began.
        assert during_stall <= 1, during_stall

        after_stall = notify_socket.pings()
        await asyncio.sleep(0.6)
        assert notify_socket.pings() - after_stall >= 2, "pings did not resume"
    stopped = notify_socket.pings()
    await asyncio.sleep(0.4)
    assert notify_socket.pings() == stopped, "pings continued after close()"


async def test_watchdog_pid_of_another_process_disables_the_watchdog(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    notifier = ServiceNotifier()
    assert notifier.watchdog_timeout is None
    await notifier.start()
    await asyncio.sleep(0.5)
    await notifier.close()
    assert notify_socket.pings() == 0


async def test_watchdog_pid_of_this_process_enables_the_watchdog(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    notifier = ServiceNotifier()
    async with started(notifier):
        assert await pings_reach(notify_socket, 3)


async def test_failing_health_check_withholds_pings(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    healthy = False

    def check() -> bool:
        return healthy

    notifier = ServiceNotifier(health_check=check)
    async with started(notifier):
        await asyncio.sleep(0.4)
        assert notify_socket.pings() == 0
        healthy = True
        assert await pings_reach(notify_socket, 2)


async def test_close_is_idempotent_and_start_after_close_is_refused(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    notifier = ServiceNotifier()
    await notifier.start()
    await notifier.start()  # a second start does not add a second pinger
    await notifier.close()
    await notifier.close()
    with pytest.raises(RuntimeError):
        await notifier.start()


async def test_a_vanished_socket_is_logged_not_raised(
    notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = ServiceNotifier()
    notify_socket.close()
    notify_socket.path.unlink()
    with caplog.at_level(logging.WARNING, logger="appliance.service_manager"):
        assert notifier.status("nobody listens") is False
    assert "sd_notify" in caplog.text


async def test_without_notify_socket_everything_is_a_logged_no_op(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    with caplog.at_level(logging.DEBUG, logger="appliance.service_manager"):
        notifier = ServiceNotifier()
        assert not notifier.enabled and notifier.watchdog_timeout is None
        assert notifier.ready("x") is False
        await notifier.start()
        await notifier.close()
    assert "NOTIFY_SOCKET unset" in caplog.text


async def test_without_systemd_python_everything_is_a_logged_no_op(
    notify_socket: NotifySocket,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "systemd.daemon", None)  # import now raises ImportError
    with caplog.at_level(logging.DEBUG, logger="appliance.service_manager"):
        notifier = ServiceNotifier()
        assert notifier.ready() is False
        assert notifier.status("x") is False
    assert "systemd-python is not installed" in caplog.text
    time.sleep(0.1)
    assert notify_socket.all() == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4243"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "me"}, None),
    ],
)
def test_watchdog_interval_rules(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env, 4242) == expected
