"""Chaos, bounded: a three-party room while the daemon is killed twice (SIGKILL), the status
callback receiver goes down and comes back, and 300 idle connections are held.

Afterwards: the database is intact, every status callback arrived (each room's
SequenceNumbers 0..n with no gap, in order, ending with room-ended), a duplicate (a delivery
the kill interrupted after the receiver had it) is identical to the first copy, and the
participants who join the restarted daemon get media again.
"""

from __future__ import annotations

import asyncio
import re
import socket
import sqlite3
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from edge_sfu.store import DB_FILE
from tests.support.daemon import connect_from, running_daemon
from tests.support.waiting import wait_for

from .participants import Participant, encoded_clip

pytestmark = pytest.mark.timeout(120)

NAMES = ["ann", "bob", "cat"]
ROOM = "chaos"
IDLE = 300


class CallbackReceiver:
    """Status callbacks on a fixed loopback port, so it can go down and come back."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/status"
        self.received: list[dict[str, str]] = []
        #: While set, each request is recorded, then answered only after a pause.
        self.slow = False
        self.holding = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        params["X-Twilio-Signature"] = request.headers.get("X-Twilio-Signature", "")
        params["I-Twilio-Idempotency-Token"] = request.headers.get("I-Twilio-Idempotency-Token", "")
        self.received.append(params)
        if self.slow:
            self.holding.set()
            await asyncio.sleep(2)  # the unit waits: a kill now makes it send this one again
        return web.Response(status=204)

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/status", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def hold_idle(port: int) -> list[socket.socket]:
    return [connect_from(f"127.0.0.{2 + i % 10}", port) for i in range(IDLE)]


async def three_party_call(ws_url: str, data_dir: Path, clip: Any) -> list[Participant]:
    people = [await Participant.join(ws_url, data_dir, n, ROOM, clip) for n in NAMES]
    for p in people:
        await p.wait_for_media([n for n in NAMES if n != p.identity], frames=10, timeout=30)
        # A test daemon offers media on loopback only (EDGE_APPLIANCE_LOOPBACK_ONLY).
        assert p.room.media is not None
        sdp = p.room.media.pc.remoteDescription.sdp
        hosts = set(re.findall(r"a=candidate:\S+ \d+ udp \d+ (\S+) \d+", sdp))
        assert hosts == {"127.0.0.1"}, hosts
    return people


def outbox_size(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / DB_FILE, timeout=5) as db:
        return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


async def test_kill_twice_receiver_down_idle_connections(tmp_path: Path) -> None:
    started = time.monotonic()
    receiver = CallbackReceiver()
    await receiver.up()
    config: dict[str, dict[str, object]] = {
        "audio": {"enabled": False},
        "rooms": {"status_callback": receiver.url},
    }
    clip = encoded_clip()
    kills = 0
    data_dir = tmp_path / "unit" / "data"
    try:
        for round_ in range(3):
            with running_daemon(tmp_path, config, name="unit") as daemon:
                url = await asyncio.to_thread(daemon.wait_ready)
                ws_url = url.replace("http://", "ws://") + "/v1/signaling"
                idle = hold_idle(int(url.rsplit(":", 1)[1])) if round_ == 0 else []
                receiver.slow = round_ == 0
                if round_ == 1:
                    await receiver.down()
                people = await three_party_call(ws_url, data_dir, clip)
                for sock in idle:
                    sock.close()
                if round_ == 0:
                    # Kill while a delivery the receiver already has is unanswered: each
                    # takes 2 s, one at a time, and the room has queued eight by now.
                    await asyncio.wait_for(receiver.holding.wait(), 20)
                if round_ < 2:
                    daemon.proc.kill()  # SIGKILL: no goodbye, no cleanup
                    daemon.proc.wait(10)
                    kills += 1
                    receiver.slow = False
                await asyncio.gather(*(p.close() for p in people))
                if round_ == 1:
                    await receiver.up()
                if round_ == 2:
                    # End the room for good, then wait for the outbox to drain.
                    key = await asyncio.to_thread(daemon.api_key)
                    live = "/v1/Rooms?Status=in-progress"
                    rooms = await asyncio.to_thread(daemon.rest, live, key)
                    for room in rooms["rooms"]:
                        sid = room["sid"]
                        await asyncio.to_thread(
                            daemon.rest, f"/v1/Rooms/{sid}", key, {"Status": "completed"}
                        )
                    await wait_for(
                        lambda: outbox_size(data_dir),
                        lambda pending: pending == 0,
                        45,
                        "the callback outbox to drain",
                    )
                    assert daemon.stop() == 0
    finally:
        await receiver.down()
    assert kills == 2

    with sqlite3.connect(data_dir / DB_FILE) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    copies = Counter((c["RoomSid"], c["SequenceNumber"]) for c in receiver.received)
    assert max(copies.values()) >= 2, "the kill while a delivery was unanswered made no duplicate"
    by_room: dict[str, list[dict[str, str]]] = defaultdict(list)
    for params in receiver.received:
        by_room[params["RoomSid"]].append(params)
    assert len(by_room) == 3  # a room per daemon life: a kill ends the room at restart
    for sid, calls in by_room.items():
        numbers = [int(c["SequenceNumber"]) for c in calls]
        # In order (a retried one may repeat), nothing missing, ending with room-ended.
        assert numbers == sorted(numbers), (sid, numbers)
        assert sorted(set(numbers)) == list(range(max(numbers) + 1)), (sid, numbers)
        last = [c for c in calls if int(c["SequenceNumber"]) == max(numbers)]
        assert last[0]["StatusCallbackEvent"] == "room-ended", (sid, last)
        events = {c["StatusCallbackEvent"] for c in calls}
        assert {"room-created", "participant-connected", "track-added"} <= events
        first_copy: dict[int, dict[str, str]] = {}
        for c in calls:
            n = int(c["SequenceNumber"])
            # A duplicate is the very same callback: same Timestamp, parameters, signature
            # and idempotency token (if the unit sends one).
            assert first_copy.setdefault(n, c) == c, (sid, n)
    assert time.monotonic() - started < 110
