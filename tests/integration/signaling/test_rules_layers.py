"""Subscribe rules decide who receives what; each subscriber gets one layer, by render size;
removals by the control plane reach the client with their reason code."""

from __future__ import annotations

import asyncio

import pytest

from edge_sfu.client import connect
from edge_sfu.media import H264, LayerSpec
from tests.support.media import (
    H264TestSource,
    PatternVideoTrack,
    ToneAudioTrack,
    frames_until,
    receive_frames,
)
from tests.support.sfu import join

pytestmark = pytest.mark.timeout(120)


async def test_subscribe_rules_decide_who_gets_what(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    camera = await alice.publish_track(PatternVideoTrack(), "camera")
    mic = await alice.publish_track(ToneAudioTrack(), "mic")
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    subscribed = {}
    while len(subscribed) < 2:
        _track, pub, _who = await bob.wait_for("track_subscribed", timeout=30)
        subscribed[pub.sid] = pub
    rooms = sfu.context.rooms

    # Audio only: the video subscription ends, the audio one stays.
    gone = bob.expect("track_unsubscribed")
    await rooms.set_subscribe_rules(bob.local_sid, [{"type": "include", "kind": "audio"}])
    _track, pub, _who = await asyncio.wait_for(gone, 15)
    assert pub.sid == camera.sid and pub.track is None
    assert set(rooms.participant(bob.local_sid).subscribed) == {mic.sid}

    # Everything again: the video comes back and plays.
    back = bob.expect("track_subscribed")
    await rooms.set_subscribe_rules(bob.local_sid, [{"type": "include", "all": True}])
    track, pub, _who = await asyncio.wait_for(back, 30)
    assert pub.sid == camera.sid
    frames = await receive_frames(track, 3)
    assert frames[-1].width == 320


@pytest.fixture
async def two_layer_camera(sfu):
    """The kiosk in room1 publishing a camera with a 640x480 main and a 320x240 lores layer."""
    local = await sfu.signaling.connect_local("room1", "kiosk")
    layers = [LayerSpec("main", 640, 480), LayerSpec("lores", 320, 240)]
    producer = await local.publish("camera", H264, layers=layers)
    sources = [
        H264TestSource(producer, 640, 480, layer="main"),
        H264TestSource(producer, 320, 240, layer="lores"),
    ]
    try:
        yield producer
    finally:
        for source in sources:
            await source.close()
        await local.disconnect()


async def test_each_subscriber_gets_the_layer_its_render_size_asks_for(
    sfu, clients, two_layer_camera
):
    big, small = await join(sfu, clients, "big", "small")
    big_track, pub, _ = await big.wait_for("track_subscribed", timeout=30)
    small_track, _, _ = await small.wait_for("track_subscribed", timeout=30)
    small.set_render_size(pub.sid, 320, 180)
    big.set_render_size(pub.sid, 1280, 720)
    for track, size in ((big_track, (640, 480)), (small_track, (320, 240))):
        frames = await receive_frames(track, 60, timeout=60)
        assert (frames[-1].width, frames[-1].height) == size
    # The small one grows: it switches layers (on a keyframe) without a new subscription.
    small.set_render_size(pub.sid, 640, 480)
    frames = await receive_frames(small_track, 60, timeout=60)
    assert (frames[-1].width, frames[-1].height) == (640, 480)
    assert not small.errors and not big.errors


async def test_no_render_size_and_zero_by_zero_get_the_best_layer(sfu, clients, two_layer_camera):
    viewer = await connect(sfu.ws_url, sfu.token("viewer"))
    clients.append(viewer)
    track, pub, _ = await viewer.wait_for("track_subscribed", timeout=30)
    # No set-render-size yet: the best layer.
    frames = await receive_frames(track, 30, timeout=60)
    assert (frames[-1].width, frames[-1].height) == (640, 480)
    viewer.set_render_size(pub.sid, 160, 120)
    frames = await frames_until(track, (320, 240))
    assert (frames[-1].width, frames[-1].height) == (320, 240)
    # 0x0 withdraws the size: the best layer again.
    viewer.set_render_size(pub.sid, 0, 0)
    frames = await frames_until(track, (640, 480))
    assert (frames[-1].width, frames[-1].height) == (640, 480)
    assert not viewer.errors


async def test_removed_by_rest_and_room_completed_carry_their_codes(sfu, clients):
    alice, bob = await join(sfu, clients, "alice", "bob")
    kicked = alice.expect("disconnected")
    seen = bob.expect("participant_disconnected")
    await sfu.context.rooms.disconnect(alice.local_sid, 53204)
    code, _message = await asyncio.wait_for(kicked, 10)
    assert code == 53204
    (who,) = await asyncio.wait_for(seen, 10)
    assert who.identity == "alice"

    completed = bob.expect("room_completed")
    ended = bob.expect("disconnected")
    room = sfu.context.rooms.live_room_by_name("room1")
    await sfu.context.rooms.complete_room(room.sid)
    await asyncio.wait_for(completed, 10)
    code, _message = await asyncio.wait_for(ended, 10)
    assert code == 53118
