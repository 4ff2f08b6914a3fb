"""Fixtures: a running SFU whose candidates stay on loopback, with short WHIP timers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection

from edge_sfu.client import Room
from edge_sfu.media import MediaSettings
from edge_sfu.signaling.whip import WhipSettings
from tests.support.media import PatternVideoTrack
from tests.support.sfu import FAST, RunningSfu, running_sfu

LOOPBACK = MediaSettings(host_addresses=("127.0.0.1",))


@pytest.fixture
async def sfu(tmp_path: Path) -> AsyncIterator[RunningSfu]:
    async with running_sfu(
        tmp_path, FAST, media=LOOPBACK, whip=WhipSettings(connect_timeout=3.0)
    ) as running:
        yield running


@pytest.fixture
async def clients() -> AsyncIterator[list[Room]]:
    """Rooms appended here are closed after the test, whatever happened."""
    rooms: list[Room] = []
    yield rooms
    for room in rooms:
        await room.close()


@pytest.fixture
async def offer() -> AsyncIterator[str]:
    """One sending offer (never answered): the body of the refused requests."""
    pc = RTCPeerConnection()
    pc.addTransceiver(PatternVideoTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    yield pc.localDescription.sdp
    await pc.close()
