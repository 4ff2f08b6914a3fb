"""WHIP/WHEP refusals: the right status and Twilio body, and nothing left behind."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from pathlib import Path

import aiohttp
from aiortc import RTCPeerConnection

from edge_sfu.client import Room, connect
from edge_sfu.rooms import RoomSettings
from edge_sfu.signaling.whip import WHIP, WhipSettings
from tests.support.media import PatternVideoTrack
from tests.support.sfu import FAST, RunningSfu, running_sfu

from .aiortc_whip import AiortcWhip, delete, post_offer
from .conftest import LOOPBACK


def sockets() -> int:
    """Sockets this process holds (the unit's candidates are UDP sockets)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def assert_nothing_left(sfu: RunningSfu, identity: str = "whip") -> None:
    assert not sfu.app[WHIP].sessions, "a session was left behind"
    others = {
        p.sid
        for room in sfu.context.rooms.live_rooms()
        for p in room.participants.values()
        if p.identity != identity
    }
    transports = [
        t
        for r in sfu.signaling.routers.values()
        for t in r.transports.values()
        if t.participant_id not in others
    ]
    assert not transports, "a transport was left behind"
    assert not [
        p
        for room in sfu.context.rooms.live_rooms()
        for p in room.participants.values()
        if p.identity == identity
    ], "a participant was left behind"


async def refused(
    sfu: RunningSfu,
    path: str,
    token: str | None,
    body: str,
    status: int,
    code: int,
    content_type: str = "application/sdp",
) -> None:
    before = sockets()
    result = await post_offer(sfu.base, path, token, body, content_type)
    assert result.status == status, result.body
    error = json.loads(result.body)
    assert error["code"] == code and error["status"] == status, error
    assert error["more_info"].endswith(str(code))
    assert result.headers["Access-Control-Allow-Origin"] == "*"
    assert result.location is None
    assert_nothing_left(sfu)
    assert sockets() <= before, "a socket was left behind"


async def test_tokens(sfu: RunningSfu, offer: str) -> None:
    await refused(sfu, "/whip/room1", None, offer, 401, 20101)
    await refused(sfu, "/whip/room1", "not-a-jwt", offer, 401, 20101)
    # a token for another room
    await refused(sfu, "/whip/room2", sfu.token("whip", room="room1"), offer, 401, 20106)
    await refused(sfu, "/whep/room2", sfu.token("whip", room="room1"), offer, 401, 20106)
    result = await post_offer(sfu.base, "/whip/room1", None, offer)
    assert result.headers["WWW-Authenticate"].startswith("Bearer")
    assert sfu.context.rooms.live_room_by_name("room1") is None


async def test_full_and_completed_rooms(sfu: RunningSfu, offer: str, clients: list[Room]) -> None:
    rooms = sfu.context.rooms
    settings = dataclasses.replace(RoomSettings.from_defaults(rooms.defaults), max_participants=1)
    await rooms.create_room("small", settings)
    clients.append(await connect(sfu.ws_url, sfu.token("first", room="small"), room="small"))
    await refused(sfu, "/whip/small", sfu.token("whip", room=None), offer, 400, 53105)
    done = await rooms.create_room("done", settings)
    await rooms.complete_room(done.sid)
    await refused(sfu, f"/whip/{done.sid}", sfu.token("whip", room=None), offer, 400, 53118)
    player = RTCPeerConnection()
    player.addTransceiver("video", direction="recvonly")
    await player.setLocalDescription(await player.createOffer())
    viewer_offer = player.localDescription.sdp
    await player.close()
    await refused(sfu, f"/whep/{done.sid}", sfu.token("whip", room=None), viewer_offer, 400, 53118)
    token = sfu.token("whip", room=None)
    await refused(sfu, f"/whep/{done.sid}/first", token, viewer_offer, 400, 53118)
    await refused(sfu, "/whep/small", sfu.token("whip", room=None), viewer_offer, 400, 53105)


async def test_bodies(sfu: RunningSfu, offer: str) -> None:
    token = sfu.token("whip")
    await refused(sfu, "/whip/room1", token, offer, 415, 20001, "application/json")
    await refused(sfu, "/whip/room1", token, offer, 415, 20001, "text/plain")
    await refused(sfu, "/whip/room1", token, "v=0\r\n" + "a=x\r\n" * 20000, 413, 21617)
    await refused(sfu, "/whip/room1", token, "hello", 400, 53403)
    # aiortc cannot parse it: the transport made for it is released
    broken = offer.replace("a=fingerprint:", "a=fingerprint:x")
    await refused(sfu, "/whip/room1", token, re.sub(r"a=ice-pwd:.*", "", broken), 400, 53403)


async def test_offers_without_forwarded_media(sfu: RunningSfu, offer: str) -> None:
    token = sfu.token("whip")
    data_only = RTCPeerConnection()
    data_only.createDataChannel("x")
    await data_only.setLocalDescription(await data_only.createOffer())
    await refused(sfu, "/whip/room1", token, data_only.localDescription.sdp, 406, 53404)
    await refused(sfu, "/whep/room1", token, data_only.localDescription.sdp, 406, 53404)
    await data_only.close()
    # only a codec the unit does not forward
    pcmu = RTCPeerConnection()
    pcmu.addTransceiver("audio", direction="sendonly")
    await pcmu.setLocalDescription(await pcmu.createOffer())
    no_opus = "\r\n".join(
        line for line in pcmu.localDescription.sdp.split("\r\n") if "opus" not in line.lower()
    )
    await refused(sfu, "/whip/room1", token, no_opus, 406, 53404)
    await pcmu.close()
    # a WHIP offer that only receives, a WHEP offer that only sends
    await refused(sfu, "/whep/room1", token, offer, 406, 53404)
    player = RTCPeerConnection()
    player.addTransceiver("video", direction="recvonly")
    await player.setLocalDescription(await player.createOffer())
    await refused(sfu, "/whip/room1", token, player.localDescription.sdp, 406, 53404)
    await player.close()
    # WHEP of a participant who is not there
    await refused(sfu, "/whep/room1/nobody", token, player.localDescription.sdp, 404, 20404)


async def _patch(url: str, token: str, body: str, **headers: str) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as http,
        http.patch(
            url,
            data=body.encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": headers.pop("content_type", "application/trickle-ice-sdpfrag"),
                **headers,
            },
        ) as response,
    ):
        text = await response.text()
        return response.status, json.loads(text) if text else {}


async def test_patch_refusals_keep_the_session(sfu: RunningSfu) -> None:
    whip = AiortcWhip()
    token = sfu.token("whip")
    try:
        result = await whip.publish(sfu.base, "room1", token, PatternVideoTrack())
        assert result.status == 201
        url, etag = result.location, result.headers["ETag"]
        assert url is not None
        ufrag = re.search(r"a=ice-ufrag:(\S+)", whip.pc.localDescription.sdp).group(1)
        pwd = re.search(r"a=ice-pwd:(\S+)", whip.pc.localDescription.sdp).group(1)
        candidate = "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"
        fragment = (
            f"a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n"
            "m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
        )
        assert (await _patch(url, token, fragment + candidate, **{"If-Match": '"nope"'}))[0] == 412
        status, error = await _patch(url, token, "hello\r\n", **{"If-Match": etag})
        assert (status, error["code"]) == (400, 20001)
        status, _ = await _patch(url, token, fragment + "a=candidate:1 1 udp x y z typ host")
        assert status == 400
        assert (await _patch(url, token, fragment, content_type="application/sdp"))[0] == 415
        assert (await _patch(url, token, "a=" + "x" * 70000))[0] == 413
        assert (await _patch(url, sfu.token("someone-else"), fragment + candidate))[0] == 401
        restart = f"a=ice-ufrag:new1\r\na=ice-pwd:{'p' * 24}\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\n"
        status, error = await _patch(url, token, restart, **{"If-Match": "*"})
        assert status == 422 and "restart" in error["message"]
        # a good trickle is taken, and the session is still there
        assert (await _patch(url, token, fragment + candidate, **{"If-Match": etag}))[0] == 204
        assert (await _patch(url, token, fragment + "a=end-of-candidates"))[0] == 204
        assert len(sfu.app[WHIP].sessions) == 1
        assert await whip.delete() == 200
        assert_nothing_left(sfu)
        assert (await _patch(url, token, fragment + candidate))[0] == 404
    finally:
        await whip.close()


async def test_options_answers_cors_preflight(sfu: RunningSfu) -> None:
    async with aiohttp.ClientSession() as http:
        for path in (
            "/whip/room1",
            "/whep/room1",
            "/whep/room1/kiosk",
            "/whep/room1/kiosk/camera",
            "/whip-sessions/x",
        ):
            async with http.options(
                sfu.base + path,
                headers={
                    "Origin": "http://elsewhere.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization, content-type",
                },
            ) as response:
                assert response.status == 204
                assert response.headers["Access-Control-Allow-Origin"] == "*"
                assert "POST" in response.headers["Access-Control-Allow-Methods"]
                assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert_nothing_left(sfu)


async def test_whep_per_track_refusals(sfu: RunningSfu, clients: list[Room]) -> None:
    publisher = await connect(sfu.ws_url, sfu.token("kiosk"), room="room1")
    clients.append(publisher)
    await publisher.publish_track(PatternVideoTrack(), "camera")
    token = sfu.token("whip")
    player = RTCPeerConnection()
    player.addTransceiver("video", direction="recvonly")
    await player.setLocalDescription(await player.createOffer())
    video_offer = player.localDescription.sdp
    await player.close()
    listener = RTCPeerConnection()
    listener.addTransceiver("audio", direction="recvonly")
    await listener.setLocalDescription(await listener.createOffer())
    audio_offer = listener.localDescription.sdp
    await listener.close()
    # a track the participant does not publish, by name or SID; a participant not there
    await refused(sfu, "/whep/room1/kiosk/microphone", token, video_offer, 404, 20404)
    await refused(sfu, "/whep/room1/kiosk/MT" + "0" * 32, token, video_offer, 404, 20404)
    await refused(sfu, "/whep/room1/nobody/camera", token, video_offer, 404, 20404)
    # an offer that cannot carry the track (no video m-line)
    await refused(sfu, "/whep/room1/kiosk/camera", token, audio_offer, 406, 53404)
    # the token's room still rules, and a completed room refuses with its code
    await refused(sfu, "/whep/room2/kiosk/camera", token, video_offer, 401, 20106)
    rooms = sfu.context.rooms
    done = await rooms.create_room("done", RoomSettings.from_defaults(rooms.defaults))
    await rooms.complete_room(done.sid)
    any_room = sfu.token("whip", room=None)
    await refused(sfu, f"/whep/{done.sid}/kiosk/camera", any_room, video_offer, 400, 53118)


def viewer(offer: str) -> str:
    """``offer`` receiving instead of sending (a WHEP player's)."""
    return offer.replace("a=sendonly", "a=recvonly")


async def test_sessions_over_the_cap_are_refused_until_one_ends(tmp_path: Path, offer: str) -> None:
    whip = WhipSettings(connect_timeout=30.0, max_sessions=2)
    async with running_sfu(tmp_path, FAST, media=LOOPBACK, whip=whip) as sfu:
        token = sfu.token("whip", room=None)
        first = await post_offer(sfu.base, "/whip/r1", sfu.token("a", room=None), offer)
        second = await post_offer(sfu.base, "/whep/r2", sfu.token("b", room=None), viewer(offer))
        assert (first.status, second.status) == (201, 201), (first.body, second.body)
        for path, body in (("/whip/r3", offer), ("/whep/r1", viewer(offer))):
            before = sockets()
            result = await post_offer(sfu.base, path, token, body)
            error = json.loads(result.body)
            assert (result.status, error["code"], error["status"]) == (503, 20503, 503), error
            assert result.headers["Retry-After"] == "5"
            assert sockets() <= before
            assert sfu.context.rooms.live_room_by_name("r3") is None
            assert len(sfu.app[WHIP].sessions) == 2
        assert first.location is not None
        assert await delete(first.location, sfu.token("a", room=None)) == 200
        third = await post_offer(sfu.base, "/whip/r3", token, offer)
        assert third.status == 201, third.body
