"""Dominant speaker and network quality through the real server, with Python clients."""

from __future__ import annotations

import asyncio
import itertools
import re
import time

import aiohttp
import pytest

from edge_sfu.client import ConnectError, connect
from edge_sfu.media import OPUS, EncodedFrame
from edge_sfu.media.allocation import MIN_PUBLISHER_CAP_BPS
from edge_sfu.media.quality import WANTED_BPS
from edge_sfu.media.twcc import FeedbackBuilder
from tests.support.media import PatternVideoTrack, ToneAudioTrack
from tests.support.sfu import set_downlink
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(120)

LOUD = 8000


async def _speaker_after(room, sid: str, timeout: float) -> float:
    """Seconds until ``room`` is told ``sid`` is the dominant speaker."""
    start = time.monotonic()
    await room.wait_for(
        "dominant_speaker_changed",
        lambda who: who is not None and getattr(who, "sid", who) == sid,
        timeout=timeout,
    )
    return time.monotonic() - start


async def test_dominant_speaker_follows_the_voice(sfu, clients):
    alice_mic, bob_mic = ToneAudioTrack(0), ToneAudioTrack(0)
    alice = await connect(sfu.ws_url, sfu.token("alice"), tracks=[alice_mic])
    bob = await connect(sfu.ws_url, sfu.token("bob"), tracks=[bob_mic], dominant_speaker=True)
    carol = await connect(sfu.ws_url, sfu.token("carol"), dominant_speaker=True)
    clients.extend([alice, bob, carol])
    for room in (alice, bob):
        await room.wait_for("published", timeout=20)
    changes: list[object] = []
    carol.on("dominant_speaker_changed", changes.append)
    await asyncio.sleep(1.5)  # media flows: silence is nobody
    assert changes == [] and carol.dominant_speaker is None

    alice_mic.amplitude = LOUD
    took = await asyncio.gather(
        _speaker_after(carol, alice.local_sid, 5), _speaker_after(bob, alice.local_sid, 5)
    )
    assert max(took) < 1.5, took
    assert carol.dominant_speaker is carol.participants[alice.local_sid]
    # the allocator ranks the speaker's tracks by the subscribers' dominant_speaker_priority
    producers = sfu.signaling.routers[alice.sid].producers.values()
    assert {p.participant_id for p in producers if p.dominant_speaker} == {alice.local_sid}

    # alice keeps talking; bob coughs twice (200 ms): no change
    for _ in range(2):
        bob_mic.amplitude = LOUD * 3
        await asyncio.sleep(0.2)
        bob_mic.amplitude = 0
        await asyncio.sleep(1.0)
    assert len(changes) == 1

    # alice stops, silence keeps her; then bob speaks: within 1.5 s
    alice_mic.amplitude = 0
    await asyncio.sleep(1.5)
    assert len(changes) == 1
    bob_mic.amplitude = LOUD
    took_bob = await asyncio.gather(
        _speaker_after(carol, bob.local_sid, 5), _speaker_after(bob, bob.local_sid, 5)
    )
    assert max(took_bob) < 1.5, took_bob
    assert bob.dominant_speaker == bob.local_sid  # ourselves: our own SID

    # the speaker leaves: nobody
    gone = carol.expect("dominant_speaker_changed")
    await bob.disconnect()
    assert await asyncio.wait_for(gone, 5) == (None,)


async def test_the_kiosk_speaks_through_its_local_producer(sfu, clients):
    watcher = await connect(sfu.ws_url, sfu.token("watcher"), dominant_speaker=True)
    clients.append(watcher)
    kiosk = await sfu.signaling.connect_local("room1", "kiosk")
    microphone = await kiosk.publish("microphone", OPUS)
    level = 127

    async def capture() -> None:  # what the kiosk's capture worker hands over, every 20 ms
        start = time.monotonic()
        for n in itertools.count():
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
            microphone.push(EncodedFrame(b"\xf8opus", True, n * 20_000, audio_level=level))

    task = asyncio.create_task(capture())
    try:
        await wait_for(lambda: kiosk.sid in watcher.participants, what="the kiosk")
        await asyncio.sleep(1.0)
        assert watcher.dominant_speaker is None  # silence is nobody
        level = 20
        assert await _speaker_after(watcher, kiosk.sid, 5) < 1.5
    finally:
        task.cancel()
        await kiosk.disconnect()


async def test_network_quality_levels_at_each_verbosity(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"), tracks=[ToneAudioTrack()])
    watcher = await connect(
        sfu.ws_url,
        sfu.token("watcher"),
        network_quality={"local": "moderate", "remote": "detailed"},
    )
    quiet = await connect(sfu.ws_url, sfu.token("quiet"), network_quality=True)
    clients.extend([alice, watcher, quiet])

    await wait_for(lambda: watcher.local_network_quality_level is not None, what="own level")
    assert watcher.local_network_quality_level == 5
    assert set(watcher.local_network_quality_stats or ()) == {"send", "recv"}
    them = next(p for p in watcher.participants.values() if p.identity == "alice")
    await wait_for(lambda: them.network_quality_level is not None, what="alice's level")
    assert them.network_quality_level >= 4
    stats = them.network_quality_stats
    assert stats is not None
    assert set(stats) >= {"send", "recv", "audio", "video", "send_stats", "recv_stats"}
    assert stats["send_stats"]["bandwidth"]["wanted"] > 0

    # the default: our own level, minimal; nothing about the others
    await wait_for(lambda: quiet.local_network_quality_level is not None, what="quiet's level")
    await asyncio.sleep(2.5)
    assert quiet.local_network_quality_level == 5
    assert all(p.network_quality_level is None for p in quiet.participants.values())

    # the REST participant resource carries the level
    key = sfu.context.keys.create("test")
    auth = {"Authorization": aiohttp.encode_basic_auth(key.sid, key.secret)}
    url = f"{sfu.base}/v1/Rooms/{alice.sid}/Participants"
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(url) as response:
            listed = (await response.json())["participants"]
        async with http.get(f"{url}/watcher") as response:
            fetched = await response.json()
    levels = {p["identity"]: p["network_quality_level"] for p in listed}
    assert levels["alice"] >= 4 and levels["watcher"] == levels["quiet"] == 5
    assert fetched["network_quality_level"] == 5


async def test_a_publisher_the_sfu_holds_back_is_judged_on_what_it_is_asked(sfu, clients):
    alice = await connect(sfu.ws_url, sfu.token("alice"), tracks=[ToneAudioTrack()])
    clients.append(alice)
    await alice.publish_track(PatternVideoTrack(), "camera")
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.append(bob)
    for _ in range(2):
        await bob.wait_for("track_subscribed", timeout=30)
    router = sfu.signaling.routers[alice.sid]
    by_sid = {t.participant_id: t for t in router.transports.values()}
    publisher, subscriber = by_sid[alice.local_sid], by_sid[bob.local_sid]
    signals = sfu.signaling.signals

    def wanted() -> int:
        signals.update_quality(time.monotonic())
        return signals.quality[alice.local_sid].send_sample.wanted_bps

    assert wanted() == sum(WANTED_BPS.values())
    # bob's downlink carries no video: alice's camera is switched off for him and she is
    # capped at the least; her uplink is asked for that, not for a camera's 400 kbit/s
    set_downlink(subscriber, 20_000)
    assert router.publisher_caps[publisher.id] == MIN_PUBLISHER_CAP_BPS
    assert wanted() == WANTED_BPS["audio"] + MIN_PUBLISHER_CAP_BPS
    set_downlink(subscriber, None)
    assert router.publisher_caps[publisher.id] is None
    assert wanted() == sum(WANTED_BPS.values())


def _break_audio_levels(room) -> list[str]:
    """From now on every audio packet ``room`` sends carries a broken audio level: in turn an
    element of the wrong length (2 bytes), none (its id moved to one not negotiated), and an
    element running past the end of the extension block (16 bytes). Returns the kinds used,
    in order, as they go."""
    sdp = room.media.pc.localDescription.sdp
    level_id = int(re.search(r"a=extmap:(\d+) urn:ietf:params:rtp-hdrext:ssrc-audio-level", sdp)[1])
    (sender,) = [t.sender for t in room.media.pc.getTransceivers() if t.kind == "audio"]
    dtls = sender.transport
    original = dtls._send_rtp
    used: list[str] = []

    def mangle(data: bytes) -> bytes:
        if data[1] & 0x7F < 96 or not data[0] & 0x10 or data[12:14] != b"\xbe\xde":
            return data  # RTCP, or no one-byte extension block
        out = bytearray(data)
        kind = ("wrong length", "missing", "overrun")[len(used) % 3]
        header = {
            "wrong length": level_id << 4 | 1,
            "missing": 14 << 4,
            "overrun": level_id << 4 | 15,
        }
        at, end = 16, 16 + 4 * ((data[14] << 8) | data[15])
        while at < end and out[at]:
            if out[at] >> 4 == level_id:
                out[at] = header[kind]
                break
            at += 2 + (out[at] & 0x0F)
        else:
            return data
        used.append(kind)
        return bytes(out)

    async def send_rtp(data: bytes) -> None:
        await original(mangle(data))

    dtls._send_rtp = send_rtp
    return used


async def test_broken_audio_levels_are_ignored_and_forwarding_goes_on(sfu, clients):
    mic = ToneAudioTrack(LOUD)
    alice = await connect(sfu.ws_url, sfu.token("alice"), tracks=[mic])
    bob = await connect(sfu.ws_url, sfu.token("bob"), dominant_speaker=True)
    clients.extend([alice, bob])
    await _speaker_after(bob, alice.local_sid, 10)  # well-formed levels: alice speaks
    router = sfu.signaling.routers[alice.sid]
    (producer,) = [p for p in router.producers.values() if p.participant_id == alice.local_sid]
    (consumer,) = producer.consumers
    meter = producer.level
    assert meter is not None and meter.current_dbov(time.monotonic()) < 60

    used = _break_audio_levels(alice)
    await wait_for(lambda: len(used) >= 30, what="broken packets sent")
    sent = consumer.packets_sent
    await asyncio.sleep(1.0)
    # nothing was read from them: the meter fell silent although alice is loud...
    assert meter.current_dbov(time.monotonic()) == 127
    assert set(used) == {"wrong length", "missing", "overrun"}
    # ...and the packets went on to bob
    await wait_for(lambda: consumer.packets_sent - sent >= 40, what="broken packets forwarded")
    assert not alice.errors and not bob.errors


async def test_unknown_verbosity_is_refused_with_a_clear_error(sfu, clients):
    with pytest.raises(ConnectError) as refused:
        await connect(sfu.ws_url, sfu.token("eve"), network_quality={"local": "loud"})
    assert refused.value.code == 53004
    assert "network_quality.local must be one of none, minimal, moderate, detailed" in str(
        refused.value
    )


async def test_the_send_side_is_judged_by_the_senders_own_estimate_when_it_reports_one(
    sfu, clients
):
    # What arrives from a sender understates its uplink whenever it sends less than it could
    # (a paused layer, a CPU-limited encoder): a client that reports its own estimate
    # (``link-stats``, as the browser client does every 2 s) is judged by that instead.
    alice = await connect(sfu.ws_url, sfu.token("alice"), tracks=[ToneAudioTrack()])
    clients.append(alice)
    await alice.publish_track(PatternVideoTrack(), "camera")
    signals = sfu.signaling.signals

    def send_sample():
        signals.update_quality(time.monotonic())
        return signals.quality[alice.local_sid].send_sample

    await wait_for(lambda: send_sample().available_bps is not None, what="a measured uplink")
    alice.send({"type": "link-stats", "available_send_bps": 60_000})
    await wait_for(lambda: send_sample().available_bps == 60_000, what="the reported estimate")
    # 60 kbit/s against the 432 kbit/s a camera and a microphone ask for: poor
    assert signals.quality[alice.local_sid].send.bandwidth <= 2
    alice.send({"type": "link-stats", "available_send_bps": 3_000_000})
    await wait_for(lambda: send_sample().available_bps == 3_000_000, what="a better estimate")
    assert signals.quality[alice.local_sid].send.bandwidth == 5

    # bad reports get a clear error and change nothing
    for bad in (-1, "fast", True, 1e12, {"bps": 1}):
        alice.send({"type": "link-stats", "available_send_bps": bad})
    alice.send({"type": "link-stats", "available_send_bps": 1, "extra": 1})
    await wait_for(lambda: len(alice.errors) == 6, what="six errors")
    assert {code for code, _ in alice.errors} == {53004}
    assert send_sample().available_bps == 3_000_000
    # null: the client has no estimate any more, and what arrives speaks again
    alice.send({"type": "link-stats", "available_send_bps": None})
    await wait_for(lambda: send_sample().available_bps != 3_000_000, what="the measured uplink")


async def test_downlink_loss_is_counted_over_the_whole_interval(sfu, clients):
    # One packet lost out of 200 is 0.5 %, a level-5 link: it must not read as the 5 % of
    # the estimator's own last window of 20 packets it falls in. The feedback is real
    # transport-cc, fed to bob's real transport.
    alice = await connect(sfu.ws_url, sfu.token("alice"), tracks=[ToneAudioTrack()])
    bob = await connect(sfu.ws_url, sfu.token("bob"))
    clients.extend([alice, bob])
    await bob.wait_for("track_subscribed", timeout=30)
    router = sfu.signaling.routers[alice.sid]
    (transport,) = [t for t in router.transports.values() if t.participant_id == bob.local_sid]
    signals = sfu.signaling.signals
    signals.update_quality(time.monotonic())  # the interval starts here
    bandwidth = transport.bandwidth
    builder = FeedbackBuilder()
    start = time.monotonic()
    for seq in range(200):  # 1200-byte packets every 5 ms; the 190th is lost
        bandwidth.on_sent(start + seq * 0.005, [(seq, 1200, False)])
        if seq != 190:
            builder.on_packet(seq, int((start + seq * 0.005 + 0.02) * 1e6))
        if seq in (179, 199):  # two feedbacks: 180 packets, then the last 20
            for fb in builder.build(9, 1):
                bandwidth.on_rtcp(fb.serialize(), start + seq * 0.005 + 0.03)
    assert bandwidth.downlink.loss == pytest.approx(0.05)  # the estimator's own window
    signals.update_quality(time.monotonic())
    recv = signals.quality[bob.local_sid].recv_sample
    assert recv.loss == pytest.approx(1 / 200)
    assert signals.quality[bob.local_sid].recv.loss == 5
