"""History lives in SQLite: it survives a restart, and rooms a dead daemon left are ended."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from edge_sfu.context import SfuContext
from edge_sfu.identity import load_or_create_identity
from edge_sfu.keys import KeyStore
from edge_sfu.store import RoomFilter
from tests.support.sfu import start_unit


async def crash_a_unit(data_dir: Path, identity: str, room: str) -> None:
    """Run a unit in a child process, connect ``identity`` to ``room``, then SIGKILL it."""
    argv = ["-m", "tests.integration.control.unit_process", str(data_dir), identity, room]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *argv, stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[3]
    )
    try:
        port = int(await asyncio.wait_for(proc.stdout.readline(), timeout=30))
        assert port > 0
    finally:
        proc.kill()
        await asyncio.wait_for(proc.wait(), timeout=10)


async def test_history_survives_and_interrupted_rooms_end(tmp_path: Path) -> None:
    first = await start_unit(tmp_path)
    done = await first.context.rooms.connect("alice", "finished")
    await first.context.rooms.complete_room(done.room_sid)
    await first.client.close()
    await crash_a_unit(tmp_path, "bob", "interrupted")

    second = await start_unit(tmp_path)
    try:
        resp = await second.client.get(
            "/v1/Rooms", params={"Status": "completed"}, headers=second.auth
        )
        rooms = {r["unique_name"]: r for r in (await resp.json())["rooms"]}
        assert set(rooms) == {"finished", "interrupted"}
        assert rooms["interrupted"]["end_time"] is not None
        assert rooms["finished"]["duration"] is not None
        resp = await second.client.get(
            f"/v1/Rooms/{rooms['interrupted']['sid']}/Participants", headers=second.auth
        )
        (bob,) = (await resp.json())["participants"]
        assert bob["identity"] == "bob" and bob["status"] == "disconnected" and bob["end_time"]
        resp = await second.client.get(
            "/v1/Rooms", params={"Status": "in-progress"}, headers=second.auth
        )
        assert (await resp.json())["rooms"] == []
        # the name is free again
        again = await second.context.rooms.connect("bob", "interrupted")
        assert again.room_sid != rooms["interrupted"]["sid"]
    finally:
        await second.client.close()


async def test_store_reopens_without_migrating_twice(tmp_path: Path) -> None:
    identity = load_or_create_identity(tmp_path)
    keys = KeyStore(tmp_path, builtin=identity.signing_key)
    for _ in range(2):
        ctx = SfuContext.open(tmp_path, identity, keys)
        await ctx.start()
        await ctx.rooms.connect("a", "r")
        await ctx.close()
    ctx = SfuContext.open(tmp_path, identity, keys)
    assert len(ctx.store.find_rooms(RoomFilter(), 10, 0)) == 2
    ctx.store.close()
