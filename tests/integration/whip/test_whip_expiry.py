"""Abandoned WHIP sessions expire and release everything (ports, memory, participants)."""

from __future__ import annotations

import asyncio
import ctypes
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection

from edge_sfu.signaling.whip import WHIP, WhipSettings
from tests.support.media import PatternVideoTrack
from tests.support.sfu import FAST, RunningSfu, running_sfu
from tests.support.waiting import wait_for

from .aiortc_whip import AiortcWhip, post_offer
from .conftest import LOOPBACK
from .test_whip_refusals import assert_nothing_left, sockets

SESSIONS = 200
BATCH = 25
#: Resident memory a second round of 200 expired sessions may add (allocator slack; measured
#: here 0.3 to 2.2 MiB). A session's transport and peer connection cost about 160 KiB while
#: open, so sessions that stay behind would show as tens of MiB.
MEMORY_SLACK_KB = 8 * 1024


@pytest.fixture
async def sfu(tmp_path: Path) -> AsyncIterator[RunningSfu]:
    settings = WhipSettings(connect_timeout=1.0, check_interval=0.2)
    async with running_sfu(tmp_path, FAST, media=LOOPBACK, whip=settings) as running:
        yield running


def resident_kb() -> int:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # as the daemon does every minute
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _abandon(sfu: RunningSfu, offer: str, batch: int) -> None:
    # One room per batch: rooms hold at most 50 participants.
    results = await asyncio.gather(
        *(
            post_offer(sfu.base, f"/whip/r{batch}", sfu.token(f"whip{batch}-{i}", room=None), offer)
            for i in range(BATCH)
        )
    )
    assert [r.status for r in results] == [201] * BATCH


async def _round(sfu: RunningSfu, offer: str) -> tuple[int, int]:
    """Open ``SESSIONS`` sessions that never connect, wait until all expired; the most
    sessions and sockets open at once."""
    service = sfu.app[WHIP]
    peak = most_sockets = 0
    for batch in range(SESSIONS // BATCH):
        await _abandon(sfu, offer, batch)
        peak = max(peak, len(service.sessions))
        most_sockets = max(most_sockets, sockets())
    # A session leaves the list as it starts closing: its transport closes just after.
    await wait_for(
        lambda: (
            not service.sessions and not any(r.transports for r in sfu.signaling.routers.values())
        ),
        timeout=20,
        what="every session expired and its transport closed",
    )
    return peak, most_sockets


async def test_200_abandoned_sessions_expire_and_release_everything(sfu: RunningSfu) -> None:
    pc = RTCPeerConnection()
    pc.addTransceiver(PatternVideoTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp  # never answered, never connects
    try:
        start_sockets = sockets()
        # The first round sets the allocator's high-water mark (all 200 live at once) and
        # warms caches; the second shows whether sessions leave anything behind.
        await _round(sfu, offer)
        assert sockets() == start_sockets, "the first round left sockets behind"
        base_memory = resident_kb()
        peak, most_sockets = await _round(sfu, offer)
        assert peak >= SESSIONS // 2
        assert most_sockets >= start_sockets + peak  # each live session held a UDP port
        assert_nothing_left(sfu, identity="")
        assert not [p for r in sfu.context.rooms.live_rooms() for p in r.participants.values()]
        assert sockets() == start_sockets
        grown = resident_kb() - base_memory
        print(f"resident memory after {SESSIONS} more expired sessions: {grown:+d} KiB")
        assert grown < MEMORY_SLACK_KB, f"{grown} KiB more after {SESSIONS} expired sessions"
    finally:
        await pc.close()


async def test_a_publisher_that_vanishes_without_delete_is_ended(sfu: RunningSfu) -> None:
    whip = AiortcWhip()
    try:
        result = await whip.publish(sfu.base, "room1", sfu.token("whip"), PatternVideoTrack())
        assert result.status == 201
        room = sfu.context.rooms.live_room_by_name("room1")
        assert room is not None
        await wait_for(
            lambda: any(p.published for p in room.participants.values()),
            timeout=10,
            what="the track published",
        )
    finally:
        await whip.close()  # gone, without DELETE
    await wait_for(lambda: not room.participants, timeout=10, what="the publisher ended")
    assert_nothing_left(sfu)
