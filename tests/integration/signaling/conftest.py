"""Fixtures: a running SFU with short signaling timers, and Python clients that close."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge_sfu.client import Room
from edge_sfu.signaling import SignalingSettings

from .server import RunningSfu, running_sfu

#: Short timers so reconnect-window tests take seconds, not half a minute.
FAST = SignalingSettings(
    heartbeat_interval=0.5,
    heartbeat_timeout=2.0,
    reconnect_window=3.0,
    join_timeout=3.0,
    answer_timeout=3.0,
)


@pytest.fixture
async def sfu(tmp_path: Path) -> AsyncIterator[RunningSfu]:
    async with running_sfu(tmp_path, FAST) as running:
        yield running


@pytest.fixture
async def clients() -> AsyncIterator[list[Room]]:
    """Rooms appended here are closed after the test, whatever happened."""
    rooms: list[Room] = []
    yield rooms
    for room in rooms:
        await room.close()
