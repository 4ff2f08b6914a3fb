"""Python clients through the real server: room state, events, media, mute, leave."""

from __future__ import annotations

import asyncio

import pytest

from edge_sfu.client import ConnectError, connect
from tests.support.media import PatternVideoTrack, ToneAudioTrack, receive_frames
from tests.support.sfu import join
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


async def test_state_events_and_media_between_two_clients(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    camera = await alice.publish_track(PatternVideoTrack(320, 240), "camera")
    mic = await alice.publish_track(ToneAudioTrack(), "mic")
    assert camera.sid and camera.sid.startswith("MT") and mic.sid

    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    # The room state at join: alice and both her publications.
    (who,) = bob.participants.values()
    assert who.identity == "alice" and set(who.tracks) == {camera.sid, mic.sid}
    assert alice.name == bob.name == "room1" and alice.sid == bob.sid

    subscribed = {}
    while len(subscribed) < 2:
        track, pub, _who = await bob.wait_for("track_subscribed", timeout=30)
        subscribed[pub.sid] = track
    frames = await receive_frames(subscribed[camera.sid], 5)
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    audio = await receive_frames(subscribed[mic.sid], 20)
    assert max(abs(int(v)) for f in audio[-5:] for v in f.to_ndarray().ravel()) > 1000

    # alice saw bob connect; mute and unmute reach bob as events.
    assert "bob" in {p.identity for p in alice.participants.values()}
    alice.set_track_enabled(camera, False)
    pub, _ = await bob.wait_for("track_disabled", timeout=10)
    assert pub.sid == camera.sid and not pub.enabled
    alice.set_track_enabled(camera, True)
    pub, _ = await bob.wait_for("track_enabled", timeout=10)
    assert pub.sid == camera.sid and pub.enabled

    bob_left = alice.expect("participant_disconnected")
    await bob.disconnect()
    (gone,) = await asyncio.wait_for(bob_left, 10)
    assert gone.identity == "bob"


async def test_refusals_carry_twilio_codes(sfu, clients):
    with pytest.raises(ConnectError) as bad:
        await connect(sfu.ws_url, sfu.token("eve")[:-3] + "abc")
    assert bad.value.code == 20107
    with pytest.raises(ConnectError) as other_room:
        await connect(sfu.ws_url, sfu.token("eve", room="room2"), room="room1")
    assert other_room.value.code == 20106


async def test_duplicate_identity_disconnects_the_first(sfu, clients):
    first = await connect(sfu.ws_url, sfu.token("kiosk"))
    clients.append(first)
    kicked = first.expect("disconnected")
    second = await connect(sfu.ws_url, sfu.token("kiosk"))
    clients.append(second)
    code, _message = await asyncio.wait_for(kicked, 10)
    assert code == 53205
    assert second.state == "connected"


async def test_unpublish_and_host_candidates_only(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    camera = await alice.publish_track(PatternVideoTrack(), "camera")
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    await bob.wait_for("track_subscribed", timeout=30)
    # Nothing but host candidates on either side: no STUN/TURN server was configured.
    for room in (alice, bob):
        sdp = room.media.pc.localDescription.sdp
        remote = room.media.pc.remoteDescription.sdp
        candidates = [line for line in (sdp + remote).splitlines() if "a=candidate" in line]
        assert candidates and all(" typ host" in line for line in candidates)
    transport = next(iter(sfu.signaling.routers.values())).transports
    for t in transport.values():
        assert t.pc._RTCPeerConnection__configuration.iceServers == []

    unsubscribed = bob.expect("track_unsubscribed")
    unpublished = bob.expect("track_unpublished")
    alice.unpublish_track(camera)
    _track, pub, _who = await asyncio.wait_for(unsubscribed, 10)
    assert pub.sid == camera.sid
    pub, who = await asyncio.wait_for(unpublished, 10)
    assert pub.sid == camera.sid and who.identity == "alice"
    assert camera.sid not in bob.participants[alice.local_sid].tracks
    room = sfu.context.rooms.live_room_by_name("room1")
    assert not room.participants[alice.local_sid].published
    # The renegotiation that turned the m-line inactive went through.
    await asyncio.sleep(1.0)
    assert not alice.errors and alice.state == "connected"


async def test_a_late_joiner_receives_every_track_of_a_full_room(sfu, clients):
    """A client joining a room where two others already publish a camera and a microphone
    gets all four in one offer (two m-lines of each kind): each is received on its own
    m-line and decoded (not two streams fed to one decoder, one m-line never started)."""
    for who in await join(sfu, clients, "ann", "bob"):
        await who.publish_track(PatternVideoTrack(320, 240), "camera")
        await who.publish_track(ToneAudioTrack(), "microphone")
    (late,) = await join(sfu, clients, "cat")

    def tracks() -> list:
        return [
            pub.track
            for who in late.participants.values()
            for pub in who.tracks.values()
            if pub.track is not None
        ]

    received = await wait_for(tracks, lambda t: len(t) == 4, 20, what="four subscriptions")
    got = await asyncio.gather(
        *(receive_frames(t, 50 if t.kind == "audio" else 10, timeout=20) for t in received),
        return_exceptions=True,
    )
    assert [r for r in got if not isinstance(r, list)] == [], got
