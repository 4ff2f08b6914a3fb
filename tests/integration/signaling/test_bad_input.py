"""Garbage at the WebSocket while two other participants keep exchanging media."""

from __future__ import annotations

import asyncio
import json
import os
import random

import aiohttp
import pytest

from edge_sfu.client import connect
from edge_sfu.signaling.protocol import MAX_FRAME_BYTES
from tests.support.media import PatternVideoTrack, receive_frames

pytestmark = pytest.mark.timeout(180)

#: Thousands of lines, yet under the frame limit: the SDP line limit must catch it.
HUGE_SDP = "v=0\r\n" + "a=x\r\n" * 20000


def _garbage_frames(token: str) -> list[str | bytes]:
    rng = random.Random(1234)
    frames: list[str | bytes] = [os.urandom(rng.randint(1, 4000)) for _ in range(5)]
    frames += [
        "not json at all {",
        "[1, 2, 3]",
        '"a string"',
        json.dumps({"no": "type"}),
        json.dumps({"type": 42}),
        json.dumps({"type": "bogus"}),
        json.dumps({"type": "answer", "negotiation": 7, "sdp": "v=0\r\n"}),
        json.dumps({"type": "answer", "negotiation": "x", "sdp": 5}),
        json.dumps({"type": "answer", "negotiation": 1, "sdp": HUGE_SDP}),
        json.dumps({"type": "publish", "tracks": [{"client_id": "a", "kind": "smell"}]}),
        json.dumps({"type": "publish", "tracks": [{"client_id": "a" * 500, "kind": "video"}]}),
        json.dumps({"type": "publish", "tracks": "all of them"}),
        json.dumps({"type": "set-enabled", "track_sid": "MT" + "0" * 32, "enabled": False}),
        json.dumps({"type": "set-enabled", "track_sid": "../../etc", "enabled": "no"}),
        json.dumps({"type": "set-render-size", "track_sid": "MT" + "f" * 32, "width": -1}),
        json.dumps({"type": "join", "version": 1, "token": token}),
        json.dumps({"type": "ping", "extra": True}),
        json.dumps({"type": "ping", "ref": {"nested": [1, 2]}}),
        "[" * 30000,
    ]
    rng.shuffle(frames)
    return frames


async def _send_all(ws: aiohttp.ClientWebSocketResponse, frames: list[str | bytes]) -> list:
    replies = []
    for frame in frames:
        if ws.closed:
            break
        try:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            break
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            break
        replies.append(json.loads(msg.data))
    return replies


async def _attack(sfu) -> dict[str, object]:
    results: dict[str, object] = {}
    async with aiohttp.ClientSession() as http:
        # 1. Garbage as the very first frame: refused, closed with a reason.
        for name, first in [
            ("binary-first", os.urandom(64)),
            ("json-first", json.dumps({"type": "publish", "tracks": []})),
            ("old-version", json.dumps({"type": "join", "version": 99})),
            ("bad-token", json.dumps({"type": "join", "version": 1, "token": "x.y.z"})),
        ]:
            async with http.ws_connect(sfu.ws_url) as ws:
                replies = await _send_all(ws, [first])
                results[name] = (replies, ws.close_code)
        # 2. A frame over the size limit: the server closes with a reason.
        async with http.ws_connect(sfu.ws_url) as ws:
            await ws.send_str(json.dumps({"type": "join", "version": 1, "token": "x" * 300_000}))
            msg = await ws.receive(timeout=10)
            results["huge"] = (msg.type, ws.close_code)
        # 2b. ... also once joined: the participant is out at once, not after the window.
        async with http.ws_connect(sfu.ws_url) as ws:
            await ws.send_str(json.dumps({"type": "join", "version": 1, "token": sfu.token("hg")}))
            await ws.receive(timeout=10)
            await ws.send_str(json.dumps({"type": "ping", "ref": "x" * 300_000}))
            await ws.receive(timeout=10)
            room = sfu.context.rooms.live_room_by_name("room1")
            for _ in range(20):  # well under the 3 s reconnect window
                if room.by_identity("hg") is None:
                    break
                await asyncio.sleep(0.1)
            results["joined-huge"] = (ws.close_code, room.by_identity("hg"))
        # 3. A joined participant sending garbage: errors, never a crash.
        async with http.ws_connect(sfu.ws_url) as ws:
            token = sfu.token("mallory")
            await ws.send_str(json.dumps({"type": "join", "version": 1, "token": token}))
            joined = json.loads((await ws.receive(timeout=10)).data)
            assert joined["type"] == "joined"
            replies = await _send_all(ws, [f for f in _garbage_frames(token) if isinstance(f, str)])
            results["joined-text"] = (replies, ws.close_code)
        # 4. ... and a joined participant sending binary noise: closed with a reason.
        async with http.ws_connect(sfu.ws_url) as ws:
            token = sfu.token("trudy")
            await ws.send_str(json.dumps({"type": "join", "version": 1, "token": token}))
            await ws.receive(timeout=10)
            results["joined-binary"] = (await _send_all(ws, _garbage_frames(token)), ws.close_code)
        # 5. A text frame that is not UTF-8.
        async with http.ws_connect(sfu.ws_url) as ws:
            token = sfu.token("oscar")
            await ws.send_str(json.dumps({"type": "join", "version": 1, "token": token}))
            await ws.receive(timeout=10)
            await ws._writer.send_frame(b'{"type": "ping\xff\xfe"}', aiohttp.WSMsgType.TEXT)
            results["invalid-utf8"] = (await _send_all(ws, []), ws.close_code)
    return results


async def test_garbage_never_disturbs_other_participants(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    await alice.publish_track(PatternVideoTrack(320, 240), "camera")
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    track, _pub, _who = await bob.wait_for("track_subscribed", timeout=30)
    await receive_frames(track, 3)

    counted: list[int] = []

    async def keep_receiving() -> None:
        while True:
            frame = await track.recv()
            counted.append(frame.width)

    receiver = asyncio.create_task(keep_receiving())
    try:
        results = await _attack(sfu)
        before = len(counted)
        await asyncio.sleep(1.0)
        assert len(counted) > before  # still flowing after the attack
    finally:
        receiver.cancel()
    assert len(counted) >= 15 and set(counted) == {320}
    assert alice.state == bob.state == "connected"
    # The attackers are gone (the last one after the reconnect window) and nobody else is.
    for _ in range(100):
        if {p.identity for p in bob.participants.values()} == {"alice"}:
            break
        await asyncio.sleep(0.1)
    assert {p.identity for p in bob.participants.values()} == {"alice"}
    assert {p.identity for p in alice.participants.values()} == {"bob"}

    replies, code = results["binary-first"]
    assert replies[0]["type"] == "disconnected" and replies[0]["code"] == 53004 and code == 4400
    replies, code = results["json-first"]
    assert replies[0]["code"] == 53004 and code == 4400
    replies, code = results["old-version"]
    assert replies[0]["code"] == 53004 and "version" in replies[0]["message"]
    replies, code = results["bad-token"]
    assert replies[0]["code"] == 20101 and code == 4403
    _msg_type, code = results["huge"]
    assert code == 1009  # message too big
    code, still_there = results["joined-huge"]
    assert code == 1009 and still_there is None
    replies, code = results["joined-text"]
    errors = [r for r in replies if r["type"] == "error"]
    codes = {r["code"] for r in errors}
    text_frames = [f for f in _garbage_frames("") if isinstance(f, str)]
    assert len(errors) == len(text_frames)  # one error per bad message, none fatal
    # Not closed for the garbage: only later, for never answering the server's pings.
    assert code == 4408
    assert codes <= {53004, 53300, 53403, 53404}
    assert 53403 in codes  # the SDP with thousands of lines
    replies, code = results["joined-binary"]
    assert replies[-1]["type"] == "disconnected" and code == 4400
    replies, code = results["invalid-utf8"]
    assert code == 1007  # aiohttp closes with "invalid frame payload data" itself
    assert MAX_FRAME_BYTES == 256 * 1024
