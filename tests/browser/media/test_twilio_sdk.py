"""The official twilio-video.js SDK (npm, pinned in package.json), unmodified, in headless
Chromium against the unit's ``/twilio/signaling``: two SDK pages and the Python client in one
room decode each other's video, hear each other, exchange data-track messages, see mute and
a publication made after connect, and the pages contact nothing but the unit."""

from __future__ import annotations

import asyncio

import pytest
from twilio.rest import Client

from edge_sfu.client import connect
from edge_sfu.signaling.twilio import TWILIO
from tests.browser.kiosk.audio_files import write_wav_tone
from tests.integration.control.twilio_adapter import LocalVideoHttpClient
from tests.support.browser import INBOUND_JS, chromium, joined_page, require_chromium
from tests.support.media import PatternVideoTrack, ToneAudioTrack, receive_frames
from tests.support.sfu import running_sfu
from tests.support.twilio_sdk import SDK, app_server, frames_of, join, logged, receiving, sdk_page
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


async def test_sdk_pages_join_page_and_python_client_share_a_room(tmp_path):
    require_chromium()
    if not SDK.exists():
        pytest.skip("twilio-video not installed (npm ci)")
    async with running_sfu(tmp_path) as sfu:
        py = await connect(sfu.ws_url, sfu.token("py"))
        requests: list[str] = []
        try:
            await py.publish_track(PatternVideoTrack(320, 240), "camera")
            await py.publish_track(ToneAudioTrack(), "microphone")
            async with chromium() as browser, app_server() as origin:
                alice = await sdk_page(browser, origin, requests)
                bob = await sdk_page(browser, origin, requests)
                assert (await join(alice, sfu, "alice")).startswith("PA")
                # bob asks the unit for ICE servers in-band and sends telemetry to its sink
                unit_ws = f"ws://127.0.0.1:{sfu.port}"
                options = {"iceServers": None, "insights": True}
                options["wsServerInsights"] = f"{unit_ws}/twilio/insights"
                assert (await join(bob, sfu, "bob", **options)).startswith("PA")
                ann = await joined_page(browser, sfu.base, sfu.token("ann"))

                # every page decodes every other participant's video and hears its audio
                everyone = {"alice": 1, "bob": 1, "py": 1, "ann": 1}
                for name, page in (("alice", alice), ("bob", bob)):
                    others = {k: v for k, v in everyone.items() if k != name}
                    entries = await wait_for(
                        lambda page=page: page.evaluate("inbound()"),
                        lambda e, others=others: receiving(e, others),
                        90,
                    )
                    assert receiving(entries, others), (name, entries)
                await wait_for(
                    lambda: ann.evaluate(INBOUND_JS),
                    lambda e: sum(1 for x in e or [] if x["framesDecoded"] > 0) >= 3,
                    90,
                )

                # the Python client decodes both SDK cameras at their size
                async def sdk_videos():
                    return [
                        pub.track
                        for who in py.participants.values()
                        if who.identity in ("alice", "bob")
                        for pub in who.tracks.values()
                        if pub.track is not None and pub.kind == "video"
                    ]

                videos = await wait_for(sdk_videos, lambda v: len(v) == 2, 60)
                for track in videos:
                    frames = await receive_frames(track, 5, timeout=60)
                    # 640x480, or scaled down while the uplink estimate ramps up
                    size = (frames[-1].width, frames[-1].height)
                    assert size[0] * 3 == size[1] * 4 and 160 <= size[0] <= 640, size

                # data track messages both ways
                await alice.evaluate("window.data.send('hello from alice')")
                await bob.evaluate("window.data.send('hello from bob')")
                for page, text in ((bob, "alice:hello from alice"), (alice, "bob:hello from bob")):
                    got = await wait_for(
                        lambda page=page: page.evaluate("window.messages"),
                        lambda m, text=text: text in m,
                        30,
                    )
                    assert text in got

                # mute and unmute, seen by the other SDK page and by the Python client
                muted = py.expect(
                    "track_disabled",
                    lambda pub, who: who.identity == "alice" and pub.kind == "audio",
                )
                await alice.evaluate(
                    "window.room.localParticipant.audioTracks.forEach((p) => p.track.disable())"
                )
                await logged(bob, "trackDisabled alice audio")
                await asyncio.wait_for(muted, 20)
                await alice.evaluate(
                    "window.room.localParticipant.audioTracks.forEach((p) => p.track.enable())"
                )
                await logged(bob, "trackEnabled alice audio")

                # a publish priority change reaches the others
                await alice.evaluate(
                    "window.room.localParticipant.videoTracks.forEach((p) => p.setPriority('high'))"
                )
                await logged(bob, "priority alice video high")

                # unpublish and publish again
                await alice.evaluate(
                    """() => window.room.localParticipant.videoTracks.forEach(
                         (p) => window.room.localParticipant.unpublishTrack(p.track))"""
                )
                await logged(bob, "trackUnsubscribed alice video")
                await alice.evaluate(
                    """async () => {
                      const t = await Twilio.Video.createLocalVideoTrack(
                        {width: 640, height: 480, name: 'camera-again'});
                      await window.room.localParticipant.publishTrack(t);
                    }"""
                )
                await logged(bob, "trackSubscribed alice video camera-again", 60)

                # a publication after connect (the SDK recycles an m-line) reaches the others
                await bob.evaluate(
                    """async () => {
                      const t = await Twilio.Video.createLocalVideoTrack(
                        {width: 320, height: 240, name: 'screen'});
                      await window.room.localParticipant.publishTrack(t);
                    }"""
                )
                await logged(alice, "trackSubscribed bob video screen", 60)
                # it went out on a transceiver that also carries a subscription (sendrecv)
                # (currentDirection is set once the SDK has applied the answer, which may
                # come after the others already see the track)
                recycled = await wait_for(
                    lambda: bob.evaluate(
                        """() => [...window.room._signaling._peerConnectionManager._peerConnections
                          .values()][0]._peerConnection.getTransceivers()
                          .filter((t) => t.currentDirection === 'sendrecv').length"""
                    ),
                    lambda n: n >= 1,
                    timeout=15,
                    what="a recycled (sendrecv) transceiver",
                )
                assert recycled >= 1
                entries = await wait_for(
                    lambda: alice.evaluate("inbound()"),
                    lambda e: receiving(e, {"bob": 2}),
                    60,
                )
                assert receiving(entries, {"bob": 2, "py": 1}), entries

                # the signaling socket is cut mid-call: reconnecting, reconnected, media goes on
                service = sfu.app[TWILIO]
                session = next(s for s in service.sessions.values() if s.identity == "alice")
                before = await frames_of(alice, "py")
                assert session.link is not None
                await session.link.close(4000, "cut")
                await logged(alice, "reconnecting 53001")
                await logged(alice, "reconnected")
                await asyncio.sleep(2)
                assert await frames_of(alice, "py") > before + 10
                assert service.insights_messages > 0

                # room.disconnect(): the others see the participant leave
                await bob.evaluate("window.room.disconnect()")
                await logged(bob, "disconnected none")  # a clean disconnect, no error
                await logged(alice, "participantDisconnected bob")
        finally:
            await py.disconnect()
        # the app's own page and SDK file, and the unit: nothing else
        allowed = (f"{origin}/sdk-test/", f"ws://127.0.0.1:{sfu.port}/twilio/")
        assert requests and all(u.startswith(allowed) for u in requests), requests
        assert any(u.endswith("/twilio/signaling") for u in requests)
        assert any(u.endswith("/twilio/insights") for u in requests)


async def test_rest_completed_ends_an_sdk_room_with_53118(tmp_path):
    require_chromium()
    if not SDK.exists():
        pytest.skip("twilio-video not installed (npm ci)")
    async with running_sfu(tmp_path) as sfu, chromium() as browser, app_server() as origin:
        alice = await sdk_page(browser, origin, [])
        await join(alice, sfu, "alice")
        room = sfu.context.rooms.live_room_by_name("room1")
        assert room is not None
        # the app's backend ends the room: POST /v1/Rooms/{Sid} Status=completed
        key = sfu.context.keys.create("backend")
        client = Client(
            key.sid,
            key.secret,
            sfu.identity.account_sid,
            http_client=LocalVideoHttpClient(sfu.base),
        )
        ended = await asyncio.to_thread(client.video.v1.rooms(room.sid).update, status="completed")
        assert ended.status == "completed"
        log = await wait_for(
            lambda: alice.evaluate("window.log"),
            lambda log: any(line.startswith("disconnected") for line in log),
            30,
        )
        assert "disconnected 53118" in log
        await asyncio.sleep(0)


#: What an app asks for to get every media-signaling channel the unit serves.
MEDIA_SIGNALING = {
    "dominantSpeaker": True,
    "networkQuality": {"local": 1, "remote": 1},
    "bandwidthProfile": {
        "video": {"clientTrackSwitchOffControl": "manual", "contentPreferencesMode": "manual"}
    },
}


async def test_sdk_media_signaling(tmp_path):
    """Two SDK pages with every media-signaling option: the one that starts speaking is the
    other's dominant speaker within 2 s; both get network quality levels; the listener's
    manual switch-off stops forwarding at the SFU and switch-on resumes it; its priority
    and render size reach its allocation."""
    require_chromium()
    if not SDK.exists():
        pytest.skip("twilio-video not installed (npm ci)")
    speech = tmp_path / "speech.wav"
    write_wav_tone(speech, 440, 20)  # Chromium loops it: a steady speaker
    async with (
        running_sfu(tmp_path) as sfu,
        chromium(f"--use-file-for-fake-audio-capture={speech}") as browser,
        app_server() as origin,
    ):
        alice = await sdk_page(browser, origin, [])
        bob = await sdk_page(browser, origin, [])
        await join(alice, sfu, "alice", muted=True, **MEDIA_SIGNALING)
        # bob asks for the figures too: detailed for himself, moderate for the others
        detailed = {**MEDIA_SIGNALING, "networkQuality": {"local": 3, "remote": 2}}
        await join(bob, sfu, "bob", audio=False, **detailed)
        entries = await wait_for(
            lambda: bob.evaluate("inbound()"),
            lambda e: any(x["identity"] == "alice" and x["frames"] > 0 for x in e),
            60,
            what="alice's video at bob",
        )
        assert entries
        service = sfu.app[TWILIO]
        listener = next(s for s in service.sessions.values() if s.identity == "bob")
        assert set(listener.channels.names) == {
            "active_speaker",
            "network_quality",
            "track_priority",
            "track_switch_off",
            "render_hints",
        }
        await wait_for(lambda: listener.channels.ready, lambda r: "active_speaker" in r, 20)

        # alice starts speaking: bob is told within 2 s
        started = await alice.evaluate(
            """() => { window.room.localParticipant.audioTracks.forEach((p) => p.track.enable());
                       return Date.now(); }"""
        )
        await logged(bob, "dominantSpeaker alice", 10)
        told = await bob.evaluate("window.firstAt['dominantSpeaker alice']")
        assert told - started <= 2000, told - started

        # network quality: each page has its own level and the other's, 1 to 5 (0, broken,
        # may come first, while a participant's connection is still being set up)
        def latest(log: list[str], name: str) -> int | None:
            levels = [int(x.split()[-1]) for x in log if x.startswith(f"networkQuality {name} ")]
            return levels[-1] if levels else None

        for page, names in ((alice, ("alice", "bob")), (bob, ("bob", "alice"))):
            for name in names:
                log = await wait_for(
                    lambda page=page: page.evaluate("window.log"),
                    lambda log, name=name: 1 <= (latest(log, name) or 0) <= 5,
                    30,
                    what=f"network quality of {name}",
                )
                assert 1 <= (latest(log, name) or 0) <= 5, log

        stats = await bob.evaluate(
            """() => {
              const own = window.room.localParticipant.networkQualityStats;
              const alice = [...window.room.participants.values()][0].networkQualityStats;
              return {own: own && {send: own.video.send, recv: own.audio.recv,
                                   rtt: own.video.sendStats && own.video.sendStats.latency.rtt,
                                   level: own.video.recvStats.bandwidth.level},
                      alice: alice && {send: alice.audio.send, stats: alice.audio.sendStats}};
            }"""
        )
        assert 0 <= stats["own"]["send"] <= 5 and 0 <= stats["own"]["recv"] <= 5, stats
        assert 0 <= stats["own"]["level"] <= 5, stats
        assert 0 <= stats["alice"]["send"] <= 5 and stats["alice"]["stats"] is None, stats

        # manual switch-off: the SFU stops forwarding alice's camera to bob; on resumes it
        track_sid = await bob.evaluate("remotePublication('alice', 'video').trackSid")
        consumer = listener.media.consumers[track_sid]
        allocation = listener.media.transport.allocation
        await bob.evaluate("remotePublication('alice', 'video').track.switchOff()")
        await logged(bob, "trackSwitchedOff alice video")
        assert consumer.switched_off and consumer.id in allocation.switched_off_by_client
        sent = consumer.packets_sent
        await asyncio.sleep(1.5)
        assert consumer.packets_sent == sent
        await bob.evaluate("remotePublication('alice', 'video').track.switchOn()")
        await logged(bob, "trackSwitchedOn alice video")
        await wait_for(lambda: consumer.packets_sent, lambda n: n > sent + 20, 10)
        before = await frames_of(bob, "alice")
        await wait_for(lambda: frames_of(bob, "alice"), lambda n: n > before + 10, 15)

        # the subscriber's priority and render size reach its allocation
        await bob.evaluate("remotePublication('alice', 'video').track.setPriority('high')")
        await wait_for(lambda: allocation.priorities.get(consumer.id), lambda v: v == "high")
        await bob.evaluate(
            """remotePublication('alice', 'video').track.setContentPreferences(
                 {renderDimensions: {width: 160, height: 120}})"""
        )
        await wait_for(lambda: consumer.render_size, lambda size: size == (160, 120))
        assert listener.channels.refused == 0

        # the allocation's own switch-off reaches the SDK: carol's bandwidth profile allows
        # her less than alice's camera costs, so the unit switches it off for her
        carol = await sdk_page(browser, origin, [])
        capped = {"bandwidthProfile": {"video": {"maxSubscriptionBitrate": 40_000}}}
        await join(carol, sfu, "carol", audio=False, video=False, **capped)
        await logged(carol, "trackSwitchedOff alice video")
        third = next(s for s in service.sessions.values() if s.identity == "carol")
        assert third.media.consumers[track_sid].switched_off
        # the allocation says why, as the status page shows it
        reasons = {r.consumer_id: r.reason for r in third.media.transport.allocation.status()}
        assert reasons[third.media.consumers[track_sid].id] == "max-bandwidth-reached", reasons


async def test_sdk_adaptive_simulcast(tmp_path):
    """``preferredVideoCodecs: 'auto'``: the SDK's SSRC-signalled VP8 simulcast arrives as
    layers at the unit; a subscriber rendering small gets the small layer and the publisher
    is told, through publisher hints, to pause the encoding nobody takes; rendering large
    again resumes it."""
    require_chromium()
    if not SDK.exists():
        pytest.skip("twilio-video not installed (npm ci)")
    async with (
        running_sfu(tmp_path) as sfu,
        chromium() as browser,
        app_server() as origin,
    ):
        alice = await sdk_page(browser, origin, [])
        bob = await sdk_page(browser, origin, [])
        await join(alice, sfu, "alice", audio=False, preferredVideoCodecs="auto")
        manual = {"video": {"contentPreferencesMode": "manual"}}
        await join(bob, sfu, "bob", audio=False, video=False, bandwidthProfile=manual)
        await wait_for(lambda: frames_of(bob, "alice"), lambda n: n > 10, 60, what="alice at bob")

        service = sfu.app[TWILIO]
        publisher = next(s for s in service.sessions.values() if s.identity == "alice")
        track_sid = next(iter(publisher.sids.values()))
        producer = publisher.media.router.producers[track_sid]
        # the SIM group's SSRCs are the producer's layers, lowest first; the SDK sends two of
        # them for a 640x480 camera (its third is for 960x540 and more)
        assert list(producer.layers) == ["s0", "s1", "s2"], producer
        assert publisher.channels.names[-1] == "publisher_hints"

        async def encodings() -> list[bool]:
            sent = await alice.evaluate("outbound()")
            return [e["active"] for e in sent["encodings"]]

        def sizes() -> dict[str, tuple[int, int]]:
            return {n: (x.spec.width, x.spec.height) for n, x in producer.layers.items()}

        await wait_for(sizes, lambda s: s["s0"] == (320, 240) and s["s1"] == (640, 480), 30)

        # bob renders small: he gets the small layer, and alice pauses the large one
        await bob.evaluate(
            """remotePublication('alice', 'video').track.setContentPreferences(
                 {renderDimensions: {width: 160, height: 120}})"""
        )
        entries = await wait_for(
            lambda: bob.evaluate("inbound()"),
            lambda e: any(x["identity"] == "alice" and x["width"] == 320 for x in e),
            30,
            what="the small layer at bob",
        )
        assert entries
        await wait_for(
            lambda: publisher.channels.hints.get(track_sid), lambda h: h == (True, False, False), 10
        )
        assert await wait_for(encodings, lambda e: e == [True, False, False], 10) == [
            True,
            False,
            False,
        ]
        await wait_for(
            lambda: publisher.channels.hint_results.get(track_sid), lambda r: r == "OK", 10
        )
        # the paused encoding sends nothing any more; the small one goes on
        before = {s["ssrc"]: s["bytesSent"] for s in (await alice.evaluate("outbound()"))["stats"]}
        await asyncio.sleep(2)
        after = {s["ssrc"]: s["bytesSent"] for s in (await alice.evaluate("outbound()"))["stats"]}
        grew = sorted(after[s] > before.get(s, 0) for s in after)
        assert grew.count(True) == 1, (before, after)
        assert producer.layers["s1"].bitrate_bps == 0

        # bob renders large again: alice resumes the large encoding and bob gets it
        await bob.evaluate(
            """remotePublication('alice', 'video').track.setContentPreferences(
                 {renderDimensions: {width: 640, height: 480}})"""
        )
        await wait_for(encodings, lambda e: e[:2] == [True, True], 15)
        entries = await wait_for(
            lambda: bob.evaluate("inbound()"),
            lambda e: any(x["identity"] == "alice" and x["width"] == 640 for x in e),
            30,
            what="the large layer at bob",
        )
        assert entries
        assert publisher.channels.refused == 0
