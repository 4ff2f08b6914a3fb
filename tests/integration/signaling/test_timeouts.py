"""Timers that protect the server from clients that stop halfway (FAST: 3 s each)."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from tests.support.sfu import FAST

pytestmark = pytest.mark.timeout(60)


async def _messages(ws: aiohttp.ClientWebSocketResponse, limit: float) -> list[dict]:
    out = []
    while True:
        msg = await ws.receive(timeout=limit)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return out
        data = json.loads(msg.data)
        out.append(data)
        if data["type"] == "ping":
            await ws.send_str(json.dumps({"type": "pong", "ref": data["ref"]}))


async def test_no_join_in_time(sfu):
    async with aiohttp.ClientSession() as http, http.ws_connect(sfu.ws_url) as ws:
        started = time.monotonic()
        replies = await _messages(ws, 10)
        assert replies == [
            {"type": "disconnected", "code": 53002, "message": "no join message in time"}
        ]
        assert ws.close_code == 4408
        assert FAST.join_timeout - 0.5 <= time.monotonic() - started <= FAST.join_timeout + 3


async def test_an_offer_left_unanswered_disconnects(sfu):
    async with aiohttp.ClientSession() as http, http.ws_connect(sfu.ws_url) as ws:
        join = {"type": "join", "version": 1, "token": sfu.token("lazy")}
        await ws.send_str(json.dumps(join))
        publish = {"type": "publish", "tracks": [{"client_id": "c", "kind": "video"}]}
        await ws.send_str(json.dumps(publish))
        replies = await _messages(ws, 15)  # answers pings, never the offer
        kinds = [r["type"] for r in replies if r["type"] not in ("ping", "pong")]
        assert kinds == ["joined", "offer", "disconnected"]
        assert replies[-1]["code"] == 53402
        assert ws.close_code == 4410
        assert sfu.context.rooms.live_room_by_name("room1") is None or not (
            sfu.context.rooms.live_room_by_name("room1").participants
        )
