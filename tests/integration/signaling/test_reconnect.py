"""The reconnect window: a dropped participant keeps its SID if it comes back in time, and
is gone for everyone once the window is over (FAST timers: 2 s silence, 3 s window)."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from edge_sfu.client import connect
from tests.support.media import PatternVideoTrack, ToneAudioTrack, receive_frames
from tests.support.sfu import FAST

pytestmark = pytest.mark.timeout(120)


async def _pair(sfu, clients, *, reconnect: bool = True):
    alice = await connect(sfu.ws_url, sfu.token("alice"), reconnect=reconnect)
    clients.append(alice)
    camera = await alice.publish_track(PatternVideoTrack(), "camera")
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    track, _pub, _who = await bob.wait_for("track_subscribed", timeout=30)
    await receive_frames(track, 3)
    return alice, bob, camera, track


async def test_reconnect_within_window_keeps_sid_and_publications(sfu, clients):
    alice, bob, camera, track = await _pair(sfu, clients)
    sid = alice.local_sid
    reconnecting = bob.expect("participant_reconnecting")
    reconnected = bob.expect("participant_reconnected")
    back = alice.expect("reconnected")
    await alice._connection.ws.close()  # the signaling socket drops; the peer connection stays
    (who,) = await asyncio.wait_for(reconnecting, 10)
    assert who.sid == sid and who.state == "reconnecting"
    await asyncio.wait_for(back, 10)
    (who,) = await asyncio.wait_for(reconnected, 10)
    assert who.sid == sid == alice.local_sid
    assert camera.sid in bob.participants[sid].tracks
    frames = await receive_frames(track, 5)  # media never stopped
    assert frames[-1].width == 320
    # Still a working session: a mute after the reconnect reaches bob.
    disabled = bob.expect("track_disabled")
    alice.set_track_enabled(camera, False)
    pub, _ = await asyncio.wait_for(disabled, 10)
    assert pub.sid == camera.sid


async def test_after_the_window_the_participant_is_disconnected(sfu, clients):
    alice, bob, _camera, _track = await _pair(sfu, clients, reconnect=False)
    sid = alice.local_sid
    reconnecting = bob.expect("participant_reconnecting")
    gone = bob.expect("participant_disconnected")
    await alice._connection.ws.close()
    await asyncio.wait_for(reconnecting, 10)
    dropped = time.monotonic()
    (who,) = await asyncio.wait_for(gone, FAST.reconnect_window + 10)
    assert who.sid == sid
    assert time.monotonic() - dropped <= FAST.reconnect_window + 1.5
    assert sid not in bob.participants
    # The reconnect token is dead now.
    async with aiohttp.ClientSession() as http, http.ws_connect(sfu.ws_url) as ws:
        token = alice._connection.reconnect_token
        await ws.send_str(json.dumps({"type": "join", "version": 1, "reconnect_token": token}))
        reply = json.loads((await ws.receive(timeout=10)).data)
        assert reply == {
            "type": "disconnected",
            "code": 53002,
            "message": "unknown reconnect token, or the reconnect window is over",
        }


async def test_a_silent_client_is_gone_within_the_window(sfu, clients):
    """A client whose socket stays open but says nothing (a frozen tab, a dead link)."""
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    async with aiohttp.ClientSession() as http, http.ws_connect(sfu.ws_url) as ws:
        joined = bob.expect("participant_connected")
        await ws.send_str(json.dumps({"type": "join", "version": 1, "token": sfu.token("zed")}))
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "joined"
        last_word = time.monotonic()
        (zed,) = await asyncio.wait_for(joined, 10)
        reconnecting = bob.expect("participant_reconnecting", lambda p: p.sid == zed.sid)
        gone = bob.expect("participant_disconnected", lambda p: p.sid == zed.sid)
        # zed never answers the server's pings.
        await asyncio.wait_for(reconnecting, FAST.heartbeat_timeout + 5)
        await asyncio.wait_for(gone, FAST.reconnect_window + 5)
        assert time.monotonic() - last_word <= FAST.reconnect_window + 1.5


async def test_what_happens_while_away_is_replayed_after_the_reconnect(sfu, clients):
    alice, bob, camera, _track = await _pair(sfu, clients)
    # bob's next connection attempts wait a while: things happen in the room meanwhile.
    original = bob._connection.open

    async def slow_open(join):
        await asyncio.sleep(1.0)
        return await original(join)

    bob._connection.open = slow_open
    lost = bob.expect("track_unsubscribed")
    published = bob.expect("track_published")
    disabled = bob.expect("track_disabled")
    back = bob.expect("reconnected")
    mic_subscribed = bob.expect("track_subscribed", lambda t, p, w: p.name == "mic")
    await bob._connection.ws.close()
    rooms = sfu.context.rooms
    await asyncio.sleep(0.3)
    await rooms.set_subscribe_rules(bob.local_sid, [{"type": "include", "kind": "audio"}])
    mic = await alice.publish_track(ToneAudioTrack(), "mic")
    alice.set_track_enabled(camera, False)
    await asyncio.sleep(0.3)
    await asyncio.wait_for(back, 15)
    # The unsubscription, the new publication and the mute reach bob as events.
    _t, pub, _who = await asyncio.wait_for(lost, 10)
    assert pub.sid == camera.sid and pub.track is None
    pub, _who = await asyncio.wait_for(published, 10)
    assert pub.sid == mic.sid
    pub, _who = await asyncio.wait_for(disabled, 10)
    assert pub.sid == camera.sid
    # ... and the subscription made while away (the mic) arrives through the resent offer.
    track, pub, _who = await asyncio.wait_for(mic_subscribed, 15)
    assert pub.sid == mic.sid
    frames = await receive_frames(track, 10)
    assert frames
