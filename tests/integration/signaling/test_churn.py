"""A participant that stays while others publish and unpublish does not grow: the m-line of
an ended subscription is reused for the next one, and each ended subscription is freed."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any

import pytest

from edge_sfu.client import PublishError, RemoteDataTrack, connect
from edge_sfu.rooms.events import REMOVED_BY_REST
from edge_sfu.signaling.member import RoomMember
from tests.support.media import PatternVideoTrack, receive_frames
from tests.support.sfu import join

pytestmark = pytest.mark.timeout(300)

CYCLES = 30


def member(sfu, sid: str) -> RoomMember:
    participation = sfu.signaling.sessions[sid].participation
    assert isinstance(participation, RoomMember)
    return participation


async def plays_at(track: Any, size: tuple[int, int], run: int) -> None:
    """Return once ``run`` frames in a row arrive at ``size``.

    Frames of an earlier publication may still wait in the track's queue.
    """
    count = 0
    while count < run:
        frame = await track.recv()
        count = count + 1 if (frame.width, frame.height) == size else 0


def m_lines(sdp: str) -> int:
    return sum(1 for line in sdp.splitlines() if line.startswith("m="))


async def test_publish_unpublish_churn_reuses_m_lines_and_frees_subscriptions(sfu, clients):
    alice, bob = await join(sfu, clients, "alice", "bob")
    bridge = member(sfu, bob.local_sid).bridge
    ended = weakref.WeakSet()
    for cycle in range(CYCLES):
        subscribed = bob.expect("track_subscribed")
        camera = await alice.publish_track(PatternVideoTrack(), f"camera{cycle}")
        _track, pub, _who = await asyncio.wait_for(subscribed, 30)
        assert pub.sid == camera.sid
        ended.add(bridge.consumers[camera.sid])
        unsubscribed = bob.expect("track_unsubscribed")
        alice.unpublish_track(camera)
        await asyncio.wait_for(unsubscribed, 30)

    # After the churn, a new publication still plays at bob, on a reused m-line (a size of
    # its own tells its frames from ones of earlier publications left in the track's queue).
    subscribed = bob.expect("track_subscribed")
    camera = await alice.publish_track(PatternVideoTrack(160, 120), "camera-last")
    track, _pub, _who = await asyncio.wait_for(subscribed, 30)

    async def frames_of_the_last_publication() -> None:
        while (frame := await track.recv()).width != 160:
            pass
        assert frame.height == 120
        await receive_frames(track, 5)

    await asyncio.wait_for(frames_of_the_last_publication(), 30)
    assert not bob.errors

    assert bob.media is not None and bob.media.pc.remoteDescription is not None
    assert m_lines(bob.media.pc.remoteDescription.sdp) <= 2
    assert len(bridge.transport.pc.getTransceivers()) <= 2
    gc.collect()
    assert len(ended) == 0, f"{len(ended)} ended subscriptions still in memory"
    assert len(bridge.transport.consumers) == 1


async def test_each_publication_plays_on_the_reused_m_line(sfu, clients):
    # The subscriber's receiver and its jitter buffer outlive each subscription: a reused
    # m-line only plays if the numbering continues where the last consumer stopped.
    alice, bob = await join(sfu, clients, "alice", "bob")
    for width, height in ((320, 240), (160, 120), (320, 240), (160, 120)):
        subscribed = bob.expect("track_subscribed")
        camera = await alice.publish_track(PatternVideoTrack(width, height), f"camera{width}")
        track, pub, _who = await asyncio.wait_for(subscribed, 30)
        sender = member(sfu, bob.local_sid).bridge.consumers[pub.sid]

        await asyncio.wait_for(plays_at(track, (width, height), 10), 30)
        assert sender.packets_sent > 0
        unsubscribed = bob.expect("track_unsubscribed")
        alice.unpublish_track(camera)
        await asyncio.wait_for(unsubscribed, 30)
    assert bob.media is not None and len(bob.media.pc.getTransceivers()) == 1
    assert not bob.errors


async def test_an_unpublished_track_is_no_longer_encoded(sfu, clients):
    # Otherwise a client that publishes and unpublishes keeps pulling and encoding every
    # track it ever published: its CPU use grows with each cycle.
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    sources = []
    for cycle in range(3):
        source = PatternVideoTrack(fps=30)
        sources.append(source)
        camera = await alice.publish_track(source, f"camera{cycle}")

        async def pulling(source=source) -> None:
            while source.pulled < 5:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(pulling(), 30)
        alice.unpublish_track(camera)
    await asyncio.sleep(0.5)  # a frame taken just before the unpublish is finished
    pulled = [source.pulled for source in sources]
    await asyncio.sleep(1.0)  # at 30 fps, about 30 more frames each if still sending
    assert [source.pulled for source in sources] == pulled
    assert alice.media is not None
    senders = [t.sender for t in alice.media.pc.getTransceivers()]
    assert senders and all(sender.track is None for sender in senders)
    assert not alice.errors and alice.state == "connected"


PUBLISH_CYCLES = 40


async def test_a_publisher_reuses_its_m_line_for_each_new_publication(sfu, clients):
    # aiortc repeats every m-line in each description: one new m-line per publication
    # would make a publisher's descriptions outgrow the signaling frame limit.
    alice, bob = await join(sfu, clients, "alice", "bob")
    bridge = member(sfu, alice.local_sid).bridge
    ended = weakref.WeakSet()
    for cycle in range(PUBLISH_CYCLES):
        # sizes alternate: frames of this publication are told from the last one's
        width, height = (320, 240) if cycle % 2 == 0 else (160, 120)
        subscribed = bob.expect("track_subscribed")
        camera = await alice.publish_track(PatternVideoTrack(width, height), f"camera{cycle}")
        track, pub, _who = await asyncio.wait_for(subscribed, 30)
        assert pub.sid == camera.sid

        await asyncio.wait_for(plays_at(track, (width, height), 3), 30)
        producer = bridge.producers[camera.sid]
        ended.add(producer)
        ended.update(t for t in bridge.transport.incoming.values() if t.producer is producer)
        unsubscribed = bob.expect("track_unsubscribed")
        alice.unpublish_track(camera)
        await asyncio.wait_for(unsubscribed, 30)
        assert alice.media is not None and len(alice.media.pc.getTransceivers()) == 1

    assert alice.media is not None and alice.media.pc.remoteDescription is not None
    assert m_lines(alice.media.pc.remoteDescription.sdp) == 1
    assert len(bridge.transport.pc.getTransceivers()) == 1
    assert not alice.errors and not bob.errors
    assert not bridge.producers and not bridge.transport.producers
    assert not bridge.transport.incoming
    assert not [p for p in bridge.router.producers.values() if p.participant_id == alice.local_sid]
    del producer
    gc.collect()
    assert len(ended) == 0, f"{len(ended)} ended producers or incoming tracks still in memory"


async def test_a_pending_publish_fails_when_the_session_ends(sfu, clients):
    # A dropped session answers no publish: waiting out the 30 s publish timeout would
    # only hide why.
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    publishing = asyncio.ensure_future(alice.publish_track(PatternVideoTrack(), "camera"))
    await asyncio.sleep(0)  # the publish is sent; media cannot have started yet
    await sfu.signaling.sessions[alice.local_sid].close(REMOVED_BY_REST, "removed")
    ended = time.monotonic()
    with pytest.raises(PublishError) as refused:
        await asyncio.wait_for(publishing, 10)
    assert time.monotonic() - ended < 5
    assert refused.value.code == REMOVED_BY_REST
    assert alice.state == "disconnected"
    with pytest.raises(PublishError):  # and a publish after the end fails at once
        await asyncio.wait_for(alice.publish_track(PatternVideoTrack(), "camera2"), 5)


LEAVES = 10


def is_data(track: object) -> bool:
    return isinstance(track, RemoteDataTrack)


async def test_participants_who_leave_are_freed(sfu, clients):
    # The soak's churn: a guest joins a participant publishing video and data, publishes
    # video and data itself, and leaves. Nothing of the guest may stay behind, on its side
    # or on the side of the participant who stays.
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    await alice.publish_track(PatternVideoTrack(), "camera")
    await alice.publish_data("chat")
    bridge = member(sfu, alice.local_sid).bridge
    left: list[weakref.ref[object]] = []
    for cycle in range(LEAVES):
        guest = await connect(sfu.ws_url, sfu.token(f"guest{cycle % 3}"))
        clients.append(guest)
        video = alice.expect("track_subscribed", lambda t, *_: not is_data(t))
        data = alice.expect("track_subscribed", lambda t, *_: is_data(t))
        await guest.publish_track(PatternVideoTrack(), "camera")
        await guest.publish_data("chat")
        await asyncio.wait_for(asyncio.gather(video, data), 30)
        gone = member(sfu, guest.local_sid)
        assert len(gone.bridge.consumers) == 1 and len(gone.bridge.data.consumers) == 1
        left += [
            weakref.ref(o)
            for o in (
                sfu.signaling.sessions[guest.local_sid],
                gone,
                gone.bridge,
                gone.bridge.transport,
                gone.bridge.transport.pc,
                *gone.bridge.producers.values(),
                *gone.bridge.consumers.values(),
                *gone.bridge.data.producers.values(),
                *gone.bridge.data.consumers.values(),
                *bridge.consumers.values(),  # alice's of the guest's tracks
                *bridge.data.consumers.values(),
            )
        ]
        del gone
        unsubscribed = [
            alice.expect("track_unsubscribed", lambda t, *_: not is_data(t)),
            alice.expect("track_unsubscribed", lambda t, *_: is_data(t)),
        ]
        await guest.disconnect()
        await guest.close()
        await asyncio.wait_for(asyncio.gather(*unsubscribed), 30)

    await asyncio.sleep(0.5)  # the last departure's renegotiation
    gc.collect()
    alive = sorted(type(o).__name__ for r in left if (o := r()) is not None)
    assert not alive, f"still in memory after {LEAVES} departures: {alive}"
    assert not bridge.consumers and not bridge.data.consumers
    assert not bridge.subscriptions()
    assert len(bridge.transport.consumers) == 0
    # alice's own video m-line and one send-only m-line, reused by every guest
    assert len(bridge.transport.pc.getTransceivers()) <= 2
    assert not alice.errors
