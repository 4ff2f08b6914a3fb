"""A subscriber's downlink shared by priority: a low estimate switches its lower-priority
track off (the client hears ``track-switched-off``), a raised one switches it back on."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from edge_sfu.client import connect
from edge_sfu.media import H264, LayerSpec
from edge_sfu.media.allocation import layer_options
from edge_sfu.media.allocator import REASON_NETWORK
from edge_sfu.signaling.member import RoomMember
from edge_sfu.stats import track_stats
from tests.support.media import H264TestSource, PatternVideoTrack, receive_frames
from tests.support.sfu import describe_allocation, join, set_downlink, settled_costs
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


def transport_of(sfu, participant_sid):
    member = sfu.signaling.sessions[participant_sid].participation
    assert isinstance(member, RoomMember)
    return member.bridge.transport


async def _tight(awaitable, timeout, transport, consumers, switches=()):
    # Until ``awaitable`` is done: every half second, a downlink with room for the dearer of
    # the two tracks and half the cheaper one, at what each costs now. ``switches``: what the
    # subscriber heard so far, for the message when it does not come in time.
    future = asyncio.ensure_future(awaitable)
    deadline = time.monotonic() + timeout
    costs: list[int] = []
    while not future.done():
        now = time.monotonic()
        costs = [layer_options(c.producer, now)[0].cost for c in consumers.values()]
        set_downlink(transport, max(costs) + min(costs) // 2)
        if now > deadline:
            future.cancel()
            raise AssertionError(
                f"costs {costs}\n{describe_allocation(transport)}\nheard {list(switches)}"
            )
        await asyncio.wait({future}, timeout=0.5)
    return future.result()


async def _subscribed(room, count):
    tracks = {}
    while len(tracks) < count:
        track, pub, _who = await room.wait_for("track_subscribed", timeout=30)
        tracks[pub.name] = (track, pub)
    return tracks


@pytest.fixture
async def camera_and_screen(sfu):
    """The kiosk in room1 publishing a camera and a high-priority screen, one layer each
    (in-process: what they send does not follow any subscriber, so a test can hold it)."""
    local = await sfu.signaling.connect_local("room1", "kiosk")
    camera = await local.publish("camera", H264)
    screen = await local.publish("screen", H264, priority="high")
    sources = [H264TestSource(camera, 320, 240), H264TestSource(screen, 320, 240)]
    try:
        yield camera, screen
    finally:
        for source in sources:
            await source.close()
        await local.disconnect()


async def test_low_estimate_switches_the_lower_priority_track_off_then_on(
    sfu, clients, camera_and_screen
):
    bob = await connect(
        sfu.ws_url, sfu.token("bob"), bandwidth_profile={"video": {"mode": "presentation"}}
    )
    clients.append(bob)
    tracks = await _subscribed(bob, 2)
    camera, camera_pub = tracks["camera"]
    screen, screen_pub = tracks["screen"]
    await receive_frames(camera, 3)
    transport = transport_of(sfu, bob.local_sid)
    assert transport.allocation.profile.mode == "presentation"
    consumers = {c.producer.id: c for c in transport.consumers.values()}
    cost = await settled_costs(consumers)

    # room for the screen and half the camera: the camera (standard) goes off
    off = bob.expect("track_switched_off")
    budget = max(cost.values()) * 3 // 2  # one of the two, with room to spare, not both
    set_downlink(transport, budget)
    track, pub, who = await asyncio.wait_for(off, 10)
    assert pub.sid == camera_pub.sid and track is camera and who.identity == "kiosk"
    assert pub.is_switched_off and pub.switch_off_reason == REASON_NETWORK
    assert not screen_pub.is_switched_off
    camera_consumer = consumers[camera_pub.sid]
    assert camera_consumer.switched_off and camera_consumer.current_layer is None
    sent = camera_consumer.packets_sent
    await receive_frames(screen, 10)  # the screen plays on
    assert camera_consumer.packets_sent == sent  # nothing of the camera is forwarded
    # the status page and control socket see it, and why
    stats = track_stats(sfu.app).tracks
    (camera_row,) = stats[camera_pub.sid].subscribers
    (screen_row,) = stats[screen_pub.sid].subscribers
    assert camera_row.switched_off and camera_row.reason == REASON_NETWORK
    assert transport.allocation.last_available_bps == budget
    assert (screen_row.switched_off, screen_row.priority) == (False, "high")
    assert screen_row.allowed_layer == screen_row.preferred_layer is not None

    # the estimate lifts: after the hold time the camera is switched on, at a keyframe
    on = bob.expect("track_switched_on")
    set_downlink(transport, None)
    track, pub, _who = await asyncio.wait_for(on, 15)
    assert pub.sid == camera_pub.sid and not pub.is_switched_off
    # forwarding resumes (frames queued in the receiver from before the switch-off would
    # pass a frame count alone)
    await wait_for(lambda: camera_consumer.packets_sent, lambda n: n > sent + 20, 10)
    frames = await receive_frames(camera, 10)
    assert frames[-1].width == 320
    assert not bob.errors


async def test_a_single_layer_publisher_is_capped_at_what_its_subscribers_take(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    await alice.publish_track(PatternVideoTrack(), "camera")
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    await _subscribed(bob, 1)
    transport = transport_of(sfu, bob.local_sid)
    # the publisher's cap (the estimator's REMB ceiling) follows what bob can take
    alice_transport = transport_of(sfu, alice.local_sid)
    caps: list[int | None] = []
    alice_transport.set_publisher_cap = caps.append
    router = next(iter(sfu.signaling.routers.values()))
    set_downlink(transport, 250_000)
    assert router.publisher_caps[alice_transport.id] == 250_000 and caps == [250_000]
    set_downlink(transport, None)
    assert router.publisher_caps[alice_transport.id] is None and caps == [250_000, None]
    assert not alice.errors and not bob.errors


async def test_subscriber_priority_and_manual_switch_off(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    await alice.publish_track(PatternVideoTrack(), "camera")
    screen_local = await alice.publish_track(PatternVideoTrack(), "screen")
    profile = {"video": {"client_track_switch_off_control": "manual"}}
    bob = await connect(sfu.ws_url, sfu.token("bob"), bandwidth_profile=profile)
    clients.append(bob)
    tracks = await _subscribed(bob, 2)
    _camera, camera_pub = tracks["camera"]
    _screen, screen_pub = tracks["screen"]
    transport = transport_of(sfu, bob.local_sid)
    heard: list[tuple[float, str, str]] = []  # (when, off or on, track name)
    start = time.monotonic()
    for kind in ("off", "on"):
        bob.on(
            f"track_switched_{kind}",
            lambda _t, pub, _w, kind=kind: heard.append(
                (round(time.monotonic() - start, 1), kind, pub.name)
            ),
        )

    # the publisher raises the screen: bob hears it, and the camera goes first under a cap
    changed = bob.expect("track_publish_priority_changed")
    alice.set_publish_priority(screen_local, "high")
    priority, pub, _who = await asyncio.wait_for(changed, 10)
    assert (priority, pub.sid, pub.publish_priority) == ("high", screen_pub.sid, "high")
    consumers = {c.producer.id: c for c in transport.consumers.values()}
    await settled_costs(consumers)  # both measured
    # Room for the dearer track and half the cheaper one, so either fits alone, not both, and
    # the one that goes is chosen by priority rather than by cost. The costs are measured
    # from live streams whose encoders vary their rate: the room follows them.
    off = bob.expect("track_switched_off")
    _track, pub, _who = await _tight(off, 10, transport, consumers, heard)
    assert pub.sid == camera_pub.sid, heard

    # bob's own priority wins over the publisher's: now the screen goes off instead
    switched = [bob.expect("track_switched_off"), bob.expect("track_switched_on")]
    bob.set_track_priority(screen_pub.sid, "low")
    bob.set_track_priority(camera_pub.sid, "high")
    (_t, off_pub, _w), (_t2, on_pub, _w2) = await _tight(
        asyncio.gather(*switched), 15, transport, consumers, heard
    )
    assert (off_pub.sid, on_pub.sid) == (screen_pub.sid, camera_pub.sid), heard

    # unlimited again (the screen comes back after the hold), and bob switches the camera
    # off himself
    def camera(_track, pub, _who):
        return pub.sid == camera_pub.sid

    set_downlink(transport, None)
    off = bob.expect("track_switched_off", camera)
    bob.switch_off(camera_pub.sid)
    _track, pub, _who = await asyncio.wait_for(off, 10)
    assert pub.switch_off_reason == "disabled-by-subscriber"
    on = bob.expect("track_switched_on", camera)
    bob.switch_on(camera_pub.sid)
    await asyncio.wait_for(on, 10)
    assert not pub.is_switched_off
    assert not bob.errors


async def test_bad_priorities_and_switches_get_errors_and_the_session_goes_on(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    await alice.publish_track(PatternVideoTrack(), "camera")
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    tracks = await _subscribed(bob, 1)
    camera, camera_pub = tracks["camera"]
    with pytest.raises(ValueError):
        bob.set_track_priority(camera_pub.sid, "urgent")
    with pytest.raises(RuntimeError):
        bob.switch_off(camera_pub.sid)  # not in manual control
    bob.send({"type": "set-priority", "track_sid": camera_pub.sid, "priority": 3})
    bob.send({"type": "set-switched-off", "track_sid": "MT" + "0" * 32, "switched_off": True})
    bob.send({"type": "set-publish-priority", "track_sid": camera_pub.sid, "priority": "high"})
    await asyncio.sleep(0.5)
    codes = [code for code, _ in bob.errors]
    assert codes == [53004, 53300, 53300]
    await receive_frames(camera, 5)
    with pytest.raises(ValueError, match="mode"):
        await connect(sfu.ws_url, sfu.token("carol"), bandwidth_profile={"video": {"mode": "x"}})


async def test_a_bad_bandwidth_profile_refuses_the_join_with_a_clear_reason(sfu):
    async with aiohttp.ClientSession() as http, http.ws_connect(sfu.ws_url) as ws:
        profile = {"video": {"max_subscription_bitrate": "lots"}}
        await ws.send_json(
            {"type": "join", "version": 1, "token": sfu.token("eve"), "bandwidth_profile": profile}
        )
        message = await ws.receive_json(timeout=5)
        assert message["type"] == "disconnected" and message["code"] == 53208
        assert "max_subscription_bitrate" in message["message"]
    assert not sfu.signaling.sessions


async def test_a_local_camera_drops_to_the_layer_the_estimate_carries_and_stops_the_other(
    sfu, clients
):
    local = await sfu.signaling.connect_local("room1", "kiosk")
    layers = [LayerSpec("main", 640, 480), LayerSpec("lores", 320, 240)]
    wanted: list[frozenset[str]] = []
    producer = await local.publish(
        "camera", H264, layers=layers, on_wanted_layers=wanted.append, priority="high"
    )
    sources = [
        H264TestSource(producer, 640, 480, layer="main"),
        H264TestSource(producer, 320, 240, layer="lores"),
    ]
    try:
        (bob,) = await join(sfu, clients, "bob")
        track, _pub, _who = await bob.wait_for("track_subscribed", timeout=30)
        frames = await receive_frames(track, 10, timeout=60)
        assert (frames[-1].width, frames[-1].height) == (640, 480)
        transport = transport_of(sfu, bob.local_sid)
        (status,) = transport.allocation.status()
        assert status.priority == "high" and status.allowed_layer == "main"
        lores, main = layer_options(producer, time.monotonic())
        assert (lores.name, main.name) == ("lores", "main") and lores.cost < main.cost
        set_downlink(transport, lores.cost + (main.cost - lores.cost) // 2)
        (status,) = transport.allocation.status()
        assert status.allowed_layer == "lores" and status.reason == REASON_NETWORK
        frames = await receive_frames(track, 40, timeout=60)
        assert (frames[-1].width, frames[-1].height) == (320, 240)
        # nobody takes the main layer any more: the camera is told to stop encoding it
        assert producer.wanted_layers == {"lores"} and wanted[-1] == {"lores"}
        set_downlink(transport, None)
        frames = await receive_frames(track, 90, timeout=60)  # the hold, then a keyframe
        assert (frames[-1].width, frames[-1].height) == (640, 480)
        assert producer.wanted_layers == {"main"}
        assert not bob.errors
    finally:
        for source in sources:
            await source.close()
        await local.disconnect()


async def test_a_switch_made_while_away_is_replayed_after_the_reconnect(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"))
    clients.append(alice)
    await alice.publish_track(PatternVideoTrack(), "camera")
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    tracks = await _subscribed(bob, 1)
    _camera, camera_pub = tracks["camera"]
    transport = transport_of(sfu, bob.local_sid)
    original = bob._connection.open

    async def slow_open(join):
        await asyncio.sleep(1.0)
        return await original(join)

    bob._connection.open = slow_open
    back = bob.expect("reconnected")
    off = bob.expect("track_switched_off")
    await bob._connection.ws.close()
    await asyncio.sleep(0.3)
    set_downlink(transport, 1000)  # while bob's signaling is away
    assert next(iter(transport.consumers.values())).switched_off
    await asyncio.wait_for(back, 15)
    _track, pub, _who = await asyncio.wait_for(off, 10)
    assert pub.sid == camera_pub.sid and pub.is_switched_off
    assert pub.switch_off_reason == REASON_NETWORK
