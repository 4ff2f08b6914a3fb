"""``/twilio/signaling`` on the wire (the SDK's framing and RSP v2), without a browser:
token refusals carry the unit's Twilio codes; bad input gets ``bad`` and the session goes on;
heartbeats and the silence timeout, ``sync`` resumption, in-band ICE servers and trickled
candidates."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

from edge_sfu.client import connect
from edge_sfu.media import OPUS, IceServer, MediaSettings
from edge_sfu.rooms import RoomSettings
from edge_sfu.rooms import events as ev
from edge_sfu.signaling.twilio import TWILIO
from tests.support.media import PatternVideoTrack, receive_frames
from tests.support.sfu import FAST, running_sfu
from tests.support.waiting import wait_for

#: Well-formed SDP with a codec the unit cannot take: aiortc refuses it.
UNACCEPTABLE = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "m=video 9 UDP/TLS/RTP/SAVPF 120",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
        "a=rtpmap:120 NOPE/90000",
        "",
    ]
)


def hello(body: dict[str, Any]) -> str:
    return json.dumps({"type": "hello", "id": "h1", "timeout": 5000, "version": 2, "body": body})


def connect_body(token: str, name: str | None = "room1") -> dict[str, Any]:
    return {
        "type": "connect",
        "version": 2,
        "name": name,
        "participant": {"revision": 1, "tracks": []},
        "peer_connections": [],
        "token": token,
    }


async def frames_until(
    ws: aiohttp.ClientWebSocketResponse, wanted: str, reason: str = ""
) -> dict[str, Any]:
    """Read frames until a ``msg`` whose body type is ``wanted`` (or a ``bad`` whose reason
    has ``reason`` in it)."""
    while True:
        msg = await ws.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        frame = json.loads(msg.data)
        if frame["type"] == "bad" and wanted == "bad" and reason in frame["reason"]:
            return frame
        if frame["type"] == "msg" and frame["body"]["type"] == wanted:
            return frame["body"]


@contextlib.asynccontextmanager
async def others_media(sfu: Any) -> AsyncIterator[Any]:
    """Two other participants of the unit's own protocol in ``room1``, one receiving the
    other's video: the track, once frames flow (bad input elsewhere must not stop them)."""
    sender = await connect(sfu.ws_url, sfu.token("sender"))
    receiver = await connect(sfu.ws_url, sfu.token("receiver"))
    try:
        await sender.publish_track(PatternVideoTrack(160, 120), "camera")

        async def video() -> Any:
            return next(
                (
                    pub.track
                    for who in receiver.participants.values()
                    for pub in who.tracks.values()
                    if pub.track is not None
                ),
                None,
            )

        track = await wait_for(video, timeout=30)
        await receive_frames(track, 3, timeout=30)
        yield track
    finally:
        await sender.disconnect()
        await receiver.disconnect()


async def refusal(url: str, token: str, name: str | None = "room1") -> int:
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str(hello(connect_body(token, name)))
        body = await frames_until(ws, "error")
        return int(body["code"])


async def test_token_refusals_carry_the_units_codes(tmp_path):
    async with running_sfu(tmp_path) as sfu:
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        key = sfu.identity.signing_key
        expired = AccessToken(sfu.identity.account_sid, key.sid, key.secret, identity="a", ttl=-60)
        expired.add_grant(VideoGrant(room="room1"))
        assert await refusal(url, expired.to_jwt()) == 20104
        good = sfu.token("a")
        assert await refusal(url, good[:-4] + ("AAAA" if good[-4:] != "AAAA" else "BBBB")) == 20107
        assert await refusal(url, sfu.token("a", room="other"), "room1") == 20106
        rooms = sfu.context.rooms
        settings = replace(RoomSettings.from_defaults(rooms.defaults), max_participants=1)
        full = await rooms.create_room("full", settings)
        await rooms.connect("someone", "full")
        assert await refusal(url, sfu.token("a", room="full"), "full") == 53105
        await rooms.complete_room(full.sid)
        assert await refusal(url, sfu.token("a", room=full.sid), full.sid) == 53118


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        json.dumps({"type": "shout"}),
        json.dumps({"type": "msg", "body": {"type": "teleport"}}),
        json.dumps({"type": "msg", "body": {"type": "update", "participant": {"tracks": 5}}}),
    ],
)
async def test_bad_input_gets_bad_and_the_session_goes_on(tmp_path, frame):
    async with running_sfu(tmp_path) as sfu, aiohttp.ClientSession() as http:
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        async with http.ws_connect(url) as ws:
            await ws.send_str(hello(connect_body(sfu.token("a"))))
            connected = await frames_until(ws, "connected")
            await ws.send_str(frame)
            assert (await frames_until(ws, "bad"))["reason"]
            # still in the room, still answered
            assert sfu.context.rooms.live_participant(connected["participant"]["sid"])
            await ws.send_str(json.dumps({"type": "heartbeat"}))


async def test_update_flood_and_backward_revision_get_bad(tmp_path):
    async with running_sfu(tmp_path) as sfu, aiohttp.ClientSession() as http:
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        async with http.ws_connect(url) as ws:
            await ws.send_str(hello(connect_body(sfu.token("a"))))
            connected = await frames_until(ws, "connected")
            session = connected["session"]
            backwards = {
                "type": "update",
                "session": session,
                "peer_connections": [
                    {"id": "pc", "description": {"type": "offer", "revision": 0, "sdp": "v=0"}}
                ],
            }
            await ws.send_str(json.dumps({"type": "msg", "body": backwards}))
            assert "revision" in (await frames_until(ws, "bad"))["reason"]
            for revision in (5, 3):
                state = {"revision": revision, "tracks": []}
                update = {"type": "update", "session": session, "participant": state}
                await ws.send_str(json.dumps({"type": "msg", "body": update}))
            assert "older" in (await frames_until(ws, "bad"))["reason"]
            update = {"type": "update", "session": session, "participant": {"revision": 2}}
            for _ in range(100):
                await ws.send_str(json.dumps({"type": "msg", "body": update}))
            assert "too many" in (await frames_until(ws, "bad"))["reason"]
            assert sfu.context.rooms.live_participant(connected["participant"]["sid"])


async def test_automatic_subscription_off_excludes_everything(tmp_path):
    async with running_sfu(tmp_path) as sfu, aiohttp.ClientSession() as http:
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        async with http.ws_connect(url) as ws:
            body = connect_body(sfu.token("a"))
            body["subscribe"] = {"rules": [{"type": "exclude", "all": True}], "revision": 1}
            await ws.send_str(hello(body))
            connected = await frames_until(ws, "connected")
            sid = connected["participant"]["sid"]
            assert sfu.context.rooms.subscribe_rules(sid) == [{"type": "exclude", "all": True}]


async def test_unacceptable_sdp_ends_that_session_only_and_media_goes_on(tmp_path):
    """Garbage at connect refuses the connect; garbage offered later ends that session with
    53403; bad frames and floods meanwhile; two other participants' media never stops."""
    async with (
        running_sfu(tmp_path) as sfu,
        aiohttp.ClientSession() as http,
        others_media(sfu) as track,
    ):
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        garbage = {"id": "pc1", "description": {"type": "offer", "revision": 1, "sdp": "v=0"}}
        garbage["description"]["sdp"] = UNACCEPTABLE
        async with http.ws_connect(url) as ws:
            body = connect_body(sfu.token("a"))
            body["peer_connections"] = [garbage]
            await ws.send_str(hello(body))
            assert (await frames_until(ws, "error"))["code"] == 53403
        assert [p.identity for p in _room(sfu).participants.values()] == ["sender", "receiver"]

        async with http.ws_connect(url) as ws:
            await ws.send_str(hello(connect_body(sfu.token("b"))))
            session = (await frames_until(ws, "connected"))["session"]
            for _ in range(60):  # a flood, malformed framing, SDP that is not SDP
                update = {"type": "update", "session": session, "participant": {"revision": 2}}
                await ws.send_str(json.dumps({"type": "msg", "body": update}))
            await ws.send_str("{not json")
            assert "too many" in (await frames_until(ws, "bad", "too many"))["reason"]
            await asyncio.sleep(2.5)  # the flood is over: updates are taken again
            not_sdp = {"id": "pc1", "description": {"type": "offer", "revision": 2, "sdp": "x"}}
            update = {"type": "update", "session": session, "peer_connections": [not_sdp]}
            await ws.send_str(json.dumps({"type": "msg", "body": update}))
            assert "v=0" in (await frames_until(ws, "bad", "v=0"))["reason"]
            # SDP aiortc refuses: the connection cannot be trusted, the session ends
            garbage["description"]["revision"] = 3
            update = {"type": "update", "session": session, "peer_connections": [garbage]}
            await ws.send_str(json.dumps({"type": "msg", "body": update}))
            assert (await frames_until(ws, "error"))["code"] == 53403
        await wait_for(lambda: len(_room(sfu).participants) == 2, timeout=10)
        # the others' media never stopped
        frames = await receive_frames(track, 15, timeout=10)
        assert len(frames) == 15


def _room(sfu: Any) -> Any:
    room = sfu.context.rooms.live_room_by_name("room1")
    assert room is not None
    return room


async def test_removed_duplicate_and_session_timeout(tmp_path):
    """REST removal (53204) and a second connection of the identity (53205) end a session
    in-band; a dropped socket leaves the room after the session timeout, and a late sync is
    refused (53204)."""
    async with running_sfu(tmp_path, FAST) as sfu, aiohttp.ClientSession() as http:
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        async with http.ws_connect(url) as ws:
            await ws.send_str(hello(connect_body(sfu.token("a"))))
            sid = (await frames_until(ws, "connected"))["participant"]["sid"]
            await sfu.context.rooms.disconnect(sid, ev.REMOVED_BY_REST)
            assert (await frames_until(ws, "error"))["code"] == 53204
        async with http.ws_connect(url) as first, http.ws_connect(url) as second:
            await first.send_str(hello(connect_body(sfu.token("b"))))
            await frames_until(first, "connected")
            await second.send_str(hello(connect_body(sfu.token("b"))))
            await frames_until(second, "connected")
            assert (await frames_until(first, "error"))["code"] == 53205
        async with http.ws_connect(url) as ws:
            await ws.send_str(hello(connect_body(sfu.token("c"))))
            connected = await frames_until(ws, "connected")
        rooms = sfu.context.rooms
        sid = connected["participant"]["sid"]
        assert rooms.live_participant(sid) is not None  # reconnecting, for a while
        await wait_for(lambda: rooms.live_participant(sid) is None, timeout=10)
        async with http.ws_connect(url) as ws:
            sync = {"type": "sync", "version": 2, "session": connected["session"]}
            sync["token"] = sfu.token("c")
            await ws.send_str(hello(sync))
            assert (await frames_until(ws, "error"))["code"] == 53204


async def test_glare_the_server_is_impolite(tmp_path):
    """A participant offers first (a real aiortc peer here); while the server's own offer is
    outstanding, a client offer is ignored; the client answers the server's offer with its
    revision, offers again, and gets its answer."""
    async with running_sfu(tmp_path) as sfu, aiohttp.ClientSession() as http:
        client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        local = await sfu.signaling.connect_local("room1", "kiosk")
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        try:
            client.addTransceiver(AudioStreamTrack(), direction="sendonly")
            await client.setLocalDescription(await client.createOffer())

            def entry(kind: str, revision: int, sdp: str) -> dict[str, Any]:
                return {
                    "id": "pc1",
                    "description": {"type": kind, "revision": revision, "sdp": sdp},
                }

            async with http.ws_connect(url) as ws:
                body = connect_body(sfu.token("a"))
                body["peer_connections"] = [entry("offer", 1, client.localDescription.sdp)]
                await ws.send_str(hello(body))
                connected = await frames_until(ws, "connected")
                answer = connected["peer_connections"][0]["description"]
                assert (answer["type"], answer["revision"]) == ("answer", 1)
                await client.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
                session = connected["session"]

                def update(pc: dict[str, Any]) -> str:
                    body = {"type": "update", "session": session, "peer_connections": [pc]}
                    return json.dumps({"type": "msg", "body": body})

                # a publication in the room: the server offers a subscription (revision 2)
                await local.publish("microphone", OPUS)
                offer = await server_description(ws, "offer")
                assert offer["revision"] == 2
                # glare: the client offers too (revision 2); the impolite server ignores it
                client.addTransceiver(AudioStreamTrack(), direction="sendonly")
                crossing = await client.createOffer()  # sent, never applied: "rolled back"
                await ws.send_str(update(entry("offer", 2, crossing.sdp)))
                # the polite client answers the server's offer, then offers again
                await client.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
                await client.setLocalDescription(await client.createAnswer())
                await ws.send_str(update(entry("answer", 2, client.localDescription.sdp)))
                await client.setLocalDescription(await client.createOffer())
                await ws.send_str(update(entry("offer", 3, client.localDescription.sdp)))
                answer = await server_description(ws, "answer")
                assert answer["revision"] == 3  # never an answer to the ignored offer
                await client.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        finally:
            await client.close()
            await local.disconnect()


async def server_description(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next description of ``kind`` the server sends in an ``update``."""
    while True:
        body = await frames_until(ws, "update")
        for pc in body.get("peer_connections", []):
            description = pc.get("description")
            if description is not None and description["type"] == kind:
                return dict(description)


async def test_heartbeats_and_a_silent_client_is_dropped(tmp_path):
    """The server sends heartbeats within the negotiated timeout; a client that sends
    heartbeats stays, one silent for three timeouts loses its socket (then, after the
    session timeout, its place in the room)."""
    async with running_sfu(tmp_path, FAST) as sfu, aiohttp.ClientSession() as http:
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        rooms = sfu.context.rooms
        async with http.ws_connect(url) as alive, http.ws_connect(url) as silent:
            for ws, who in ((alive, "alive"), (silent, "silent")):
                frame = json.loads(hello(connect_body(sfu.token(who))))
                frame["timeout"] = 1000
                await ws.send_str(json.dumps(frame))
                welcome = json.loads((await ws.receive(timeout=10)).data)
                assert welcome == {"type": "welcome", "negotiatedTimeout": 1000}
            alive_sid = (await frames_until(alive, "connected"))["participant"]["sid"]
            silent_sid = (await frames_until(silent, "connected"))["participant"]["sid"]

            async def keep_alive() -> list[float]:
                beats = []
                start = time.monotonic()
                while time.monotonic() - start < 5:
                    await alive.send_str(json.dumps({"type": "heartbeat"}))
                    with contextlib.suppress(TimeoutError):
                        msg = await alive.receive(timeout=0.3)
                        text = msg.data if msg.type is aiohttp.WSMsgType.TEXT else "{}"
                        if json.loads(text).get("type") == "heartbeat":
                            beats.append(time.monotonic() - start)
                return beats

            async def stay_silent() -> tuple[list[float], float]:
                beats = []
                start = time.monotonic()
                while True:
                    msg = await silent.receive(timeout=10)
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        return beats, time.monotonic() - start  # the server closed it
                    if json.loads(msg.data)["type"] == "heartbeat":
                        beats.append(time.monotonic() - start)

            beats, (silent_beats, closed_after) = await asyncio.gather(keep_alive(), stay_silent())
            # a heartbeat at least every timeout (the server sends one every half)
            for got in (beats, silent_beats):
                gaps = [b - a for a, b in zip([0.0, *got], got, strict=False)]
                assert len(got) >= 4 and max(gaps) < 1.0, got
            assert 3.0 <= closed_after < 6.0, closed_after
            assert not alive.closed
            participant = rooms.live_participant(alive_sid)
            assert participant is not None and participant.status == "connected"
            # the silent one waits for a sync, then (session timeout, 3 s here) leaves
            assert rooms.live_participant(silent_sid) is not None
            await wait_for(lambda: rooms.live_participant(silent_sid) is None, timeout=10)
            assert rooms.live_participant(alive_sid) is not None


async def test_sync_resumes_the_session_on_a_new_socket(tmp_path):
    """A socket that drops leaves the participant reconnecting; ``sync`` with the session
    token on a new socket gets ``synced`` (the same participant, its peer connection kept)
    and the session goes on there: the next server offer arrives on the new socket."""
    async with running_sfu(tmp_path, FAST) as sfu, aiohttp.ClientSession() as http:
        client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        local = await sfu.signaling.connect_local("room1", "kiosk")
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        rooms = sfu.context.rooms
        try:
            client.addTransceiver("audio", direction="recvonly")
            await client.setLocalDescription(await client.createOffer())
            async with http.ws_connect(url) as ws:
                body = connect_body(sfu.token("a"))
                offer = {"type": "offer", "revision": 1, "sdp": client.localDescription.sdp}
                body["peer_connections"] = [{"id": "pc1", "description": offer}]
                await ws.send_str(hello(body))
                connected = await frames_until(ws, "connected")
            answer = connected["peer_connections"][0]["description"]
            await client.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            sid = connected["participant"]["sid"]
            await wait_for(
                lambda: getattr(rooms.live_participant(sid), "status", None),
                lambda status: status == "reconnecting",
                5,
            )
            async with http.ws_connect(url) as ws:
                sync = {
                    "type": "sync",
                    "version": 2,
                    "session": connected["session"],
                    "token": sfu.token("a"),
                    "participant": {"revision": 1},
                    "peer_connections": [{"id": "pc1", "description": offer}],
                }
                await ws.send_str(hello(sync))
                synced = await frames_until(ws, "synced")
                assert synced["participant"] == connected["participant"]
                assert synced["session"] == connected["session"]
                assert [pc["id"] for pc in synced["peer_connections"]] == ["pc1"]
                participant = rooms.live_participant(sid)
                assert participant is not None and participant.status == "connected"
                # the session goes on here: a publication in the room is offered (revision 2)
                await local.publish("microphone", OPUS)
                offered = await server_description(ws, "offer")
                assert offered["revision"] == 2
                # and a sync for a session that is not there is refused in-band
            async with http.ws_connect(url) as ws:
                await ws.send_str(hello({**sync, "session": "nobody"}))
                assert (await frames_until(ws, "error"))["code"] == 53204
        finally:
            await client.close()
            await local.disconnect()


async def test_ice_servers_in_band(tmp_path):
    """Without ``iceServers`` the SDK asks for them first (``ice``); the unit answers with
    its configured servers (``iced``) and the connect follows on the same socket."""
    servers = (IceServer(("turn:127.0.0.1:3478?transport=udp",), "user", "secret"),)
    async with (
        running_sfu(tmp_path, media=MediaSettings(ice_servers=servers)) as sfu,
        aiohttp.ClientSession() as http,
    ):
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        async with http.ws_connect(url) as ws:
            ice = {"type": "ice", "version": 1, "token": sfu.token("a"), "edge": "roaming"}
            await ws.send_str(hello(ice))
            iced = await frames_until(ws, "iced")
            assert iced["ice_servers"] == [
                {
                    "urls": ["turn:127.0.0.1:3478?transport=udp"],
                    "username": "user",
                    "credential": "secret",
                }
            ]
            body = connect_body(sfu.token("a"))
            body["ice_servers"] = "success"  # what the SDK says after an iced
            await ws.send_str(json.dumps({"type": "msg", "body": body}))
            connected = await frames_until(ws, "connected")
            assert sfu.context.rooms.live_participant(connected["participant"]["sid"])


async def test_trickled_client_candidates_are_accepted(tmp_path):
    """The client's candidates trickled in ``update`` (its offer had none) reach the
    server's ICE agent; a malformed one gets ``bad`` and the session goes on."""
    async with running_sfu(tmp_path) as sfu, aiohttp.ClientSession() as http:
        client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        try:
            client.addTransceiver("audio", direction="recvonly")
            await client.setLocalDescription(await client.createOffer())
            lines = client.localDescription.sdp.split("\r\n")
            candidates = [line[2:] for line in lines if line.startswith("a=candidate:")]
            assert candidates
            bare = "\r\n".join(
                line for line in lines if not line.startswith(("a=candidate:", "a=end-of-cand"))
            )
            async with http.ws_connect(url) as ws:
                body = connect_body(sfu.token("a"))
                offer = {"type": "offer", "revision": 1, "sdp": bare}
                body["peer_connections"] = [{"id": "pc1", "description": offer}]
                await ws.send_str(hello(body))
                connected = await frames_until(ws, "connected")
                session = next(iter(sfu.app[TWILIO].sessions.values()))
                ice = session.media.transport.pc.getTransceivers()[0].receiver.transport.transport

                def remote_ports() -> set[int]:
                    return {c.port for c in ice.getRemoteCandidates() if c.type == "host"}

                assert remote_ports() == set()
                ufrag = next(line for line in lines if line.startswith("a=ice-ufrag:"))[12:]
                trickled = {
                    "id": "pc1",
                    "ice": {
                        "candidates": [{"candidate": c} for c in candidates],
                        "revision": 1,
                        "ufrag": ufrag,
                    },
                }
                update = {"type": "update", "session": connected["session"]}
                update["peer_connections"] = [trickled]
                await ws.send_str(json.dumps({"type": "msg", "body": update}))
                wanted = {int(c.split()[5]) for c in candidates}
                await wait_for(remote_ports, lambda ports: ports == wanted, 10)
                broken = {"id": "pc1", "ice": {"candidates": [{"candidate": "candidate:x"}]}}
                update["peer_connections"] = [broken]
                await ws.send_str(json.dumps({"type": "msg", "body": update}))
                assert "candidate" in (await frames_until(ws, "bad"))["reason"]
                assert sfu.context.rooms.live_participant(connected["participant"]["sid"])
        finally:
            await client.close()


async def test_unknown_types_and_backward_revisions_leave_others_media_alone(tmp_path):
    """Unknown frame and body types, a description revision going backwards and a
    participant revision going backwards each get ``bad``; meanwhile two other
    participants' media flows on, and the sender stays in the room."""
    async with (
        running_sfu(tmp_path) as sfu,
        aiohttp.ClientSession() as http,
        others_media(sfu) as track,
    ):
        url = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
        async with http.ws_connect(url) as ws:
            await ws.send_str(hello(connect_body(sfu.token("a"))))
            connected = await frames_until(ws, "connected")
            session = connected["session"]

            def msg(body: dict[str, Any]) -> str:
                return json.dumps({"type": "msg", "body": {**body, "session": session}})

            update = {"type": "update"}
            for frame, reason in (
                (json.dumps({"type": "shout"}), "unknown frame type"),
                (msg({"type": "teleport"}), "unknown body type"),
                (msg({"type": "connect"}), "not expected"),
                (msg({**update, "participant": {"revision": 4, "tracks": []}}), ""),
                (msg({**update, "participant": {"revision": 2, "tracks": []}}), "older"),
            ):
                await ws.send_str(frame)
                if reason:
                    assert reason in (await frames_until(ws, "bad", reason))["reason"]
            backwards = {"type": "offer", "revision": 0, "sdp": UNACCEPTABLE}
            pcs = [{"id": "pc1", "description": backwards}]
            await ws.send_str(msg({**update, "peer_connections": pcs}))
            assert "revision" in (await frames_until(ws, "bad", "revision"))["reason"]
            assert sfu.context.rooms.live_participant(connected["participant"]["sid"])
            # the others' media never stopped
            frames = await receive_frames(track, 15, timeout=10)
            assert len(frames) == 15
