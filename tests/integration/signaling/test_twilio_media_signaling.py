"""twilio-video.js media signaling on ``/twilio/signaling`` without a browser: a real aiortc
peer speaks the SDK's side of the data channels. The channels asked for and served are
advertised and opened; priorities and render hints reach the subscriber's allocation;
switch-offs come back; publisher hints follow the wanted layers of an SSRC-simulcast
publication; bad messages get an answer on their channel and harm nothing else."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from edge_sfu.client import connect
from edge_sfu.media import H264
from edge_sfu.signaling.twilio import TWILIO
from tests.integration.signaling.test_twilio_endpoint import (
    connect_body,
    frames_until,
    hello,
    server_description,
)
from tests.support.media import H264TestSource, PatternVideoTrack
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

DC = {"transports": [{"type": "data-channel"}]}
SERVED = {
    "active_speaker",
    "network_quality",
    "track_priority",
    "track_switch_off",
    "render_hints",
    "publisher_hints",
}


class SdkSide:
    """The SDK's end of the media-signaling channels: every message received, by label."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.channels: dict[str, Any] = {}
        self.received: dict[str, list[dict[str, Any]]] = {}
        pc.on("datachannel", self._on_channel)

    def _on_channel(self, channel: Any) -> None:
        label = channel.label
        self.channels[label] = channel
        self.received[label] = []
        channel.on("message", lambda m: self.received[label].append(json.loads(m)))

    def send(self, label: str, message: object) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        self.channels[label].send(text)

    def mark(self, label: str) -> int:
        """Where ``reply`` starts looking for messages sent after this point."""
        return len(self.received[label])

    async def reply(
        self, label: str, until: Any, timeout: float = 10, since: int | None = None
    ) -> dict[str, Any]:
        """The first message on ``label`` (from ``since``, else from now) for which ``until``
        holds."""
        start = self.mark(label) if since is None else since

        def found() -> dict[str, Any] | None:
            return next((m for m in self.received[label][start:] if until(m)), None)

        got = await wait_for(found, lambda m: m is not None, timeout, what=f"a {label} reply")
        assert got is not None, self.received[label]
        return got


async def test_media_signaling_channels(tmp_path):
    async with running_sfu(tmp_path) as sfu, aiohttp.ClientSession() as http:
        client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sdk = SdkSide(client)
        local = await sfu.signaling.connect_local("room1", "kiosk")
        try:
            client.createDataChannel("chat")  # the SDK's data track: SCTP from the start
            client.addTransceiver("video", direction="recvonly")
            await client.setLocalDescription(await client.createOffer())
            async with http.ws_connect(f"ws://127.0.0.1:{sfu.port}/twilio/signaling") as ws:
                body = connect_body(sfu.token("alice"))
                body["peer_connections"] = [
                    {
                        "id": "pc1",
                        "description": {
                            "type": "offer",
                            "revision": 1,
                            "sdp": client.localDescription.sdp,
                        },
                    }
                ]
                body["media_signaling"] = {
                    name: DC for name in (*SERVED, "extension_transcriptions")
                }
                body["bandwidth_profile"] = {"video": {"mode": "grid"}}
                await ws.send_str(hello(body))
                connected = await frames_until(ws, "connected")
                # transcriptions are not served, so not advertised
                assert set(connected["media_signaling"]) == SERVED
                for name, spec in connected["media_signaling"].items():
                    assert spec == {"transport": {"type": "data-channel", "label": name}}
                answer = connected["peer_connections"][0]["description"]
                await client.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
                session = connected["session"]
                service = sfu.app[TWILIO]
                alice = next(iter(service.sessions.values()))
                assert alice.media.transport.allocation.profile.mode == "grid"

                def update(pc: dict[str, Any]) -> str:
                    body = {"type": "update", "session": session, "peer_connections": [pc]}
                    return json.dumps({"type": "msg", "body": body})

                await wait_for(lambda: sorted(sdk.channels), lambda names: set(names) >= SERVED, 20)
                for name in SERVED:
                    await wait_for(lambda n=name: sdk.channels[n].readyState, lambda s: s == "open")
                    sdk.send(name, {"type": "ready"})

                # network quality: each request is answered at the verbosity asked for
                request = {"type": "network_quality", "reportLevel": 1, "remoteReportLevel": 1}
                sdk.send("network_quality", request)
                got = await sdk.reply("network_quality", lambda m: True)
                assert got["type"] == "network_quality" and "remotes" in got
                # once measured, the level is a number 0..5
                for _ in range(10):
                    sdk.send("network_quality", request)
                    got = await sdk.reply("network_quality", lambda m: True)
                    if got["local"] is not None:
                        break
                    await asyncio.sleep(1)
                assert isinstance(got["local"], int) and 0 <= got["local"] <= 5, got
                kiosk = next(r for r in got["remotes"] if r["sid"] == local.sid)
                assert 0 <= kiosk["level"] <= 5

                # bad messages: an error on that channel, the channel goes on
                sdk.send("render_hints", "not json")
                error = await sdk.reply("render_hints", lambda m: m["type"] == "error")
                assert error["code"] == 53004 and "JSON" in error["message"]
                sdk.send("active_speaker", {"type": "active_speaker", "participant": "PA1"})
                error = await sdk.reply("active_speaker", lambda m: m["type"] == "error")
                assert "unknown message type" in error["message"]
                sdk.send("track_priority", {"type": "track_priority", "track": "MTnone"})
                await sdk.reply("track_priority", lambda m: m["type"] == "error")
                hints = [
                    {"track": "MTnone", "enabled": False},
                    {"track": "MTnone", "render_dimensions": {"width": -5, "height": 2}},
                ]
                sdk.send(
                    "render_hints",
                    {"type": "render_hints", "subscriber": {"id": 1, "hints": hints}},
                )
                got = await sdk.reply("render_hints", lambda m: m["type"] == "render_hints")
                results = [h["result"] for h in got["subscriber"]["hints"]]
                assert got["subscriber"]["id"] == 1
                assert results == ["UNKNOWN_TRACK", "INVALID_RENDER_HINT"]

                # a subscription: the server offers it, the client answers
                camera = await local.publish("camera", H264)
                source = H264TestSource(camera, 320, 240)
                offer = await server_description(ws, "offer")
                await client.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
                await client.setLocalDescription(await client.createAnswer())
                description = {
                    "type": "answer",
                    "revision": offer["revision"],
                    "sdp": client.localDescription.sdp,
                }
                await ws.send_str(update({"id": "pc1", "description": description}))
                consumer = await wait_for(lambda: alice.media.consumers.get(camera.id))
                # its media flows: the allocation switches it on
                await wait_for(lambda: consumer.packets_sent, lambda n: n > 10, 20)
                allocation = alice.media.transport.allocation

                # the subscriber's priority reaches its allocation; null gives it back
                message = {"type": "track_priority", "track": camera.id, "subscribe": "high"}
                sdk.send("track_priority", message)
                await wait_for(
                    lambda: allocation.priorities.get(consumer.id), lambda v: v == "high"
                )
                sdk.send("track_priority", {**message, "subscribe": None})
                await wait_for(lambda: consumer.id not in allocation.priorities, bool)

                # render hints: a size, then switched off by the subscriber and on again
                def hint(**values: Any) -> dict[str, Any]:
                    return {
                        "type": "render_hints",
                        "subscriber": {"id": 2, "hints": [{"track": camera.id, **values}]},
                    }

                sdk.send("render_hints", hint(render_dimensions={"width": 320, "height": 180}))
                got = await sdk.reply("render_hints", lambda m: m["type"] == "render_hints")
                assert got["subscriber"]["hints"] == [{"track": camera.id, "result": "OK"}]
                assert consumer.render_size == (320, 180)
                mark = sdk.mark("track_switch_off")
                sdk.send("render_hints", hint(enabled=False))
                await sdk.reply("render_hints", lambda m: m["type"] == "render_hints")
                assert consumer.id in allocation.switched_off_by_client
                off = await sdk.reply(
                    "track_switch_off", lambda m: camera.id in m["off"], since=mark
                )
                assert off["on"] == []
                assert consumer.switched_off
                sent = consumer.packets_sent
                await asyncio.sleep(1)
                assert consumer.packets_sent == sent  # nothing forwarded while off
                mark = sdk.mark("track_switch_off")
                sdk.send("render_hints", hint(enabled=True))
                await sdk.reply("track_switch_off", lambda m: camera.id in m["on"], since=mark)
                await wait_for(lambda: consumer.packets_sent, lambda n: n > sent, 10)
                assert not consumer.switched_off

                # a flood on the channels: dropped past the rate, the session goes on
                refused = alice.channels.refused
                for _ in range(500):
                    sdk.send("track_priority", "junk")
                await asyncio.sleep(1.5)
                sdk.send("network_quality", request)
                await sdk.reply("network_quality", lambda m: m["type"] == "network_quality")
                assert service.sessions[alice.sid] is alice and not alice.closed
                assert alice.channels.refused < 500
                # what the rate dropped is counted, apart from what was answered
                assert alice.channels.dropped > 0
                assert alice.channels.dropped + alice.channels.refused - refused == 500
                # and media goes on being forwarded
                sent = consumer.packets_sent
                await wait_for(lambda: consumer.packets_sent, lambda n: n > sent + 10, 10)
                await source.close()
        finally:
            await client.close()
            await local.disconnect()


def with_sim_group(sdp: str, extra: tuple[int, int]) -> str:
    """``sdp`` with its video m-line's SSRC made the lowest of a three-SSRC ``SIM`` group, as
    twilio-video.js munges its offers for VP8 simulcast (here only the first one sends)."""
    out = []
    for line in sdp.split("\r\n"):
        out.append(line)
        if (
            line.startswith("a=ssrc:")
            and " cname:" in line
            and not any(o.startswith("a=ssrc-group:SIM") for o in out)
        ):
            first = int(line[len("a=ssrc:") :].split()[0])
            out += [f"a=ssrc:{s} cname:sim" for s in extra]
            out.append(f"a=ssrc-group:SIM {first} {extra[0]} {extra[1]}")
    return "\r\n".join(out)


async def test_publisher_hints_follow_what_subscribers_take(tmp_path):
    """An SDK publisher's SSRC simulcast: three layers at the unit, and publisher hints that
    follow the wanted layers (none without subscribers, the lowest with one); a hint the
    SDK could not apply yet (``UNKNOWN_TRACK``) or a ``client_reset`` gets it again."""
    async with running_sfu(tmp_path) as sfu, aiohttp.ClientSession() as http:
        client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sdk = SdkSide(client)
        camera = PatternVideoTrack(320, 240)
        try:
            client.createDataChannel("chat")  # SCTP from the start, for the channels
            client.addTransceiver(camera, direction="sendonly")
            await client.setLocalDescription(await client.createOffer())
            sdp = with_sim_group(client.localDescription.sdp, (1111, 2222))
            async with http.ws_connect(f"ws://127.0.0.1:{sfu.port}/twilio/signaling") as ws:
                body = connect_body(sfu.token("alice"))
                track = {"id": camera.id, "kind": "video", "name": "camera", "enabled": True}
                body["participant"] = {"revision": 1, "tracks": [track]}
                offer = {"type": "offer", "revision": 1, "sdp": sdp}
                body["peer_connections"] = [{"id": "pc1", "description": offer}]
                body["media_signaling"] = {"publisher_hints": DC}
                await ws.send_str(hello(body))
                connected = await frames_until(ws, "connected")
                assert set(connected["media_signaling"]) == {"publisher_hints"}
                answer = connected["peer_connections"][0]["description"]
                await client.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
                await wait_for(lambda: sdk.channels.get("publisher_hints"), bool, 20)
                channel = sdk.channels["publisher_hints"]
                await wait_for(lambda: channel.readyState, lambda s: s == "open")
                sdk.send("publisher_hints", {"type": "ready"})

                service = sfu.app[TWILIO]
                alice = next(iter(service.sessions.values()))
                sid = await wait_for(lambda: alice.sids.get(camera.id), bool, 20)
                producer = alice.media.router.producers[sid]
                assert list(producer.layers) == ["s0", "s1", "s2"]
                # the lowest layer's size comes from its first keyframe
                await wait_for(
                    lambda: producer.layers["s0"].spec,
                    lambda spec: (spec.width, spec.height) == (320, 240),
                    20,
                )

                def hinted(enabled: list[bool]) -> Any:
                    def match(m: dict[str, Any]) -> bool:
                        hints = m.get("publisher", {}).get("hints", [])
                        return (
                            bool(hints)
                            and hints[0]["track"] == sid
                            and [e["enabled"] for e in hints[0]["encodings"]] == enabled
                        )

                    return match

                # nobody subscribes: every encoding paused
                first = await sdk.reply("publisher_hints", hinted([False] * 3), since=0)
                ref = first["publisher"]["id"]
                assert ref > 0 and [
                    e["layer_index"] for e in first["publisher"]["hints"][0]["encodings"]
                ] == [0, 1, 2]
                # the SDK did not know the track yet: the hint comes again, a second later
                mark = sdk.mark("publisher_hints")
                result = {"track": sid, "result": "UNKNOWN_TRACK"}
                sdk.send(
                    "publisher_hints", {"type": "publisher_hints", "id": ref, "hints": [result]}
                )
                again = await sdk.reply("publisher_hints", hinted([False] * 3), since=mark)
                assert again["publisher"]["id"] > ref
                ok = {"type": "publisher_hints", "id": again["publisher"]["id"]}
                sdk.send("publisher_hints", {**ok, "hints": [{"track": sid, "result": "OK"}]})
                await wait_for(lambda: alice.channels.hint_results.get(sid), lambda r: r == "OK")
                # replaceTrack reset the SDK's encodings: the hint comes again
                mark = sdk.mark("publisher_hints")
                sdk.send("publisher_hints", {"type": "client_reset", "track": sid, "id": 9})
                await sdk.reply("publisher_hints", hinted([False] * 3), since=mark)

                # a subscriber of the unit's own protocol: the lowest layer is sent
                mark = sdk.mark("publisher_hints")
                viewer = await connect(sfu.ws_url, sfu.token("viewer"))
                try:
                    await sdk.reply("publisher_hints", lambda m: hinted_first(m, sid), since=mark)
                    mark = sdk.mark("publisher_hints")
                finally:
                    await viewer.disconnect()
                # it left: paused again
                await sdk.reply("publisher_hints", hinted([False] * 3), since=mark)
                assert alice.channels.refused == 0
        finally:
            await client.close()


def hinted_first(message: dict[str, Any], sid: str) -> bool:
    """Whether ``message`` is a publisher hint for ``sid`` with its lowest encoding on."""
    hints = message.get("publisher", {}).get("hints", [])
    return bool(hints) and hints[0]["track"] == sid and hints[0]["encodings"][0]["enabled"]
