"""The Python client publishes pre-encoded H.264 (no re-encoding on either side of the SFU):
what a kiosk or a field unit does with its hardware encoder's output."""

from __future__ import annotations

import asyncio

import pytest

from edge_sfu.client import connect
from tests.support.media import H264TestSource, receive_frames
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


async def test_encoded_h264_from_the_python_client(sfu, clients):
    field = await connect(sfu.ws_url, sfu.token("field"))
    clients.append(field)
    camera = await field.publish_encoded_video("camera")
    source = H264TestSource(camera, 480, 272, fps=15)
    try:
        hub = await connect(sfu.ws_url, sfu.token("hub"))
        clients.append(hub)
        track, pub, who = await hub.wait_for("track_subscribed", timeout=30)
        assert who.identity == "field" and pub.kind == "video"
        frames = await receive_frames(track, 30, timeout=60)
        assert {(f.width, f.height) for f in frames} == {(480, 272)}
        assert camera.frames_sent >= 30
        # The producer carries H.264 as published: the SFU never transcoded it.
        router = next(iter(sfu.signaling.routers.values()))
        assert router.producers[pub.sid].codec.name == "H264"
        # A subscriber's keyframe request reaches the encoder through the client.
        requests = source.keyframe_requests
        router.producers[pub.sid].request_keyframe("default", force=True)
        for _ in range(100):
            if source.keyframe_requests > requests:
                break
            await asyncio.sleep(0.05)
        assert source.keyframe_requests > requests
    finally:
        await source.close()


async def test_the_units_bitrate_hints_reach_a_pre_encoded_track(sfu, clients):
    """REMB from the unit (its uplink estimate, capped by what subscribers take) reaches a
    track of pre-encoded frames, whose source chooses what to send from it."""
    field = await connect(sfu.ws_url, sfu.token("field"))
    clients.append(field)
    camera = await field.publish_encoded_video("camera")
    hints: list[int] = []
    camera.on_bitrate_hint = hints.append
    source = H264TestSource(camera, 320, 240, fps=15)
    try:
        hub = await connect(sfu.ws_url, sfu.token("hub"))
        clients.append(hub)
        await hub.wait_for("track_subscribed", timeout=30)
        await wait_for(lambda: hints, what="a first bitrate hint")
        router = next(iter(sfu.signaling.routers.values()))
        (transport,) = (
            t for t in router.transports.values() if t.participant_id == field.local_sid
        )
        transport.set_publisher_cap(150_000)
        await wait_for(lambda: camera.bitrate_hint, lambda bps: bps <= 150_000, what="cap")
        assert hints[-1] == camera.bitrate_hint
        transport.set_publisher_cap(None)
        await wait_for(lambda: camera.bitrate_hint, lambda bps: bps > 150_000, what="no cap")
    finally:
        await source.close()
