"""The Python client sends transport-cc feedback for what it receives, so the SFU estimates
its downlink from delay and can probe it, as it does a browser's."""

from __future__ import annotations

import pytest

from edge_sfu.client import connect
from edge_sfu.media import H264
from edge_sfu.signaling.member import RoomMember
from tests.support.media import H264TestSource, receive_frames
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


async def test_the_python_client_feeds_back_what_it_receives(sfu, clients) -> None:
    local = await sfu.signaling.connect_local("room1", "kiosk")
    camera = await local.publish("camera", H264)
    source = H264TestSource(camera, 320, 240)
    try:
        bob = await connect(sfu.ws_url, sfu.token("bob"))
        clients.append(bob)
        track, _pub, _who = await bob.wait_for("track_subscribed", timeout=30)
        await receive_frames(track, 5)
        member = sfu.signaling.sessions[bob.local_sid].participation
        assert isinstance(member, RoomMember)
        transport = member.bridge.transport
        bandwidth = transport.bandwidth
        await wait_for(lambda: bandwidth.feedback_received >= 20, timeout=10, what="feedback")
        assert bandwidth.malformed_feedback == 0
        # the delay-based estimate of bob's downlink runs on it, and a probe may start
        await wait_for(lambda: bandwidth.downlink.estimate_bps > 0, timeout=10, what="an estimate")
        assert transport.probe(4 * bandwidth.downlink.estimate_bps)
        assert bob.media is not None
        (feedback, _task) = next(iter(bob.media.feedback.values()))
        assert feedback.installed and feedback.sent >= bandwidth.feedback_received
        await receive_frames(track, 10)  # the picture goes on meanwhile
        assert not bob.errors
    finally:
        await source.close()
        await local.disconnect()
