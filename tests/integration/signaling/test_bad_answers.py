"""Answers that parse but that aiortc refuses: the sender is disconnected (53403), nobody else
notices."""

from __future__ import annotations

import json

import aiohttp
import pytest

from edge_sfu.client import connect
from tests.support.media import PatternVideoTrack, receive_frames

pytestmark = pytest.mark.timeout(120)

BAD_ANSWERS = [
    "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",  # no m-line at all
    "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    "a=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n",  # no ICE, no DTLS fingerprint
    "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
    "a=mid:zzz\r\na=ice-ufrag:x\r\na=ice-pwd:y\r\na=fingerprint:sha-256 00\r\n",  # wrong kind
]


@pytest.mark.parametrize("bad", BAD_ANSWERS)
async def test_a_refused_answer_disconnects_only_its_sender(sfu, clients, bad):
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    await alice.publish_track(PatternVideoTrack(), "camera")
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    track, _pub, _who = await bob.wait_for("track_subscribed", timeout=30)
    async with aiohttp.ClientSession() as http, http.ws_connect(sfu.ws_url) as ws:
        await ws.send_str(json.dumps({"type": "join", "version": 1, "token": sfu.token("eve")}))
        replies = []
        while True:
            msg = await ws.receive(timeout=15)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            replies.append(data)
            if data["type"] == "offer":
                answer = {"type": "answer", "negotiation": data["negotiation"], "sdp": bad}
                await ws.send_str(json.dumps(answer))
        assert replies[-1]["type"] == "disconnected"
        assert replies[-1]["code"] == 53403
        assert ws.close_code == 4400
    frames = await receive_frames(track, 10)
    assert frames[-1].width == 320
    assert alice.state == bob.state == "connected"
    room = sfu.context.rooms.live_room_by_name("room1")
    assert room.by_identity("eve") is None
