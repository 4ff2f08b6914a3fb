"""The Python client publishes pre-encoded H.264 (no re-encoding on either side of the SFU):
what a kiosk or a field unit does with its hardware encoder's output."""

from __future__ import annotations

import asyncio

import pytest

from edge_sfu.client import connect
from tests.support.media import H264TestSource, receive_frames

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
