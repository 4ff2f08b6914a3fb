"""Fixtures: a running SFU with short signaling timers, and Python clients that close."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge_sfu.client import Room
from tests.support.sfu import FAST, RunningSfu, running_sfu


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
