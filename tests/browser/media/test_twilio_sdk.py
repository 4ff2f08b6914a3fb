"""The official twilio-video.js SDK (npm, pinned in package.json), unmodified, in headless
Chromium against the unit's ``/twilio/signaling``: two SDK pages and the Python client in one
room decode each other's video, hear each other, exchange data-track messages, see mute and
a publication made after connect, and the pages contact nothing but the unit."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

from edge_sfu.client import connect
from edge_sfu.signaling.twilio import TWILIO
from tests.support.browser import INBOUND_JS, chromium, joined_page, require_chromium
from tests.support.media import PatternVideoTrack, ToneAudioTrack, receive_frames
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SDK = Path(__file__).resolve().parents[3] / "node_modules/twilio-video/dist/twilio-video.min.js"

PAGE = """<!doctype html><meta charset="utf-8"><title>sdk</title>
<script src="/sdk-test/twilio-video.min.js"></script>
<script>
window.log = [];
window.messages = [];
function record(room) {
  const note = (...args) => window.log.push(args.join(' '));
  room.on('participantConnected', (p) => note('participantConnected', p.identity));
  room.on('participantDisconnected', (p) => note('participantDisconnected', p.identity));
  room.on('trackSubscribed', (track, pub, p) => {
    note('trackSubscribed', p.identity, track.kind, pub.trackName);
    const got = (m) => window.messages.push(p.identity + ':' + m);
    if (track.kind === 'data') track.on('message', got);
    else document.body.appendChild(track.attach());
  });
  room.on('trackUnsubscribed', (t, pub, p) => note('trackUnsubscribed', p.identity, t.kind));
  room.on('trackDisabled', (pub, p) => note('trackDisabled', p.identity, pub.kind));
  room.on('trackEnabled', (pub, p) => note('trackEnabled', p.identity, pub.kind));
  room.on('reconnecting', (e) => note('reconnecting', e && e.code));
  room.on('reconnected', () => note('reconnected'));
  room.on('disconnected', (r, e) => note('disconnected', e ? e.code : 'none'));
}
async function join(token, wsServer, extra) {
  const data = new Twilio.Video.LocalDataTrack({name: 'chat'});
  window.data = data;
  const options = Object.assign({
    wsServer, insights: false, iceServers: [], audio: true, video: {width: 640, height: 480},
  }, extra || {});
  for (const key of Object.keys(options)) if (options[key] === null) delete options[key];
  const room = await Twilio.Video.connect(token, options);
  window.room = room;
  record(room);
  room.participants.forEach((p) => p.tracks.forEach((pub) => {
    if (pub.track) room.emit('trackSubscribed', pub.track, pub, p);  // before record()
  }));
  await room.localParticipant.publishTrack(data);
  return room.localParticipant.sid;
}
// What this page receives, per subscribed track, from that track's receiver.
async function inbound() {
  const out = [];
  const pc = window.room._signaling._peerConnectionManager._peerConnections.values().next().value
    ._peerConnection;
  for (const p of window.room.participants.values()) {
    for (const pub of p.tracks.values()) {
      if (!pub.track || pub.kind === 'data') continue;
      const r = pc.getReceivers().find((x) => x.track === pub.track.mediaStreamTrack);
      if (!r) continue;
      const s = [...(await r.getStats()).values()].find((x) => x.type === 'inbound-rtp');
      out.push({identity: p.identity, name: pub.trackName, kind: pub.kind,
        frames: s ? s.framesDecoded || 0 : 0, width: s ? s.frameWidth || 0 : 0,
        energy: s ? s.totalAudioEnergy || 0 : 0});
    }
  }
  return out;
}
</script><body></body>
"""


def sdk_token(sfu, identity: str, room: str = "room1", ttl: int = 600) -> str:
    """A token minted by twilio-python from the unit's key, as an app's backend does."""
    key = sfu.identity.signing_key
    token = AccessToken(sfu.identity.account_sid, key.sid, key.secret, identity=identity, ttl=ttl)
    token.add_grant(VideoGrant(room=room))
    return token.to_jwt()


@contextlib.asynccontextmanager
async def app_server() -> AsyncIterator[str]:
    """The app's own web server (on loopback): the test page and the SDK's dist file."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def sdk(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(SDK, headers={"Content-Type": "text/javascript"})

    app = web.Application()
    app.router.add_get("/sdk-test/page.html", page)
    app.router.add_get("/sdk-test/twilio-video.min.js", sdk)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def sdk_page(browser, origin: str, requests: list[str]):
    context = await browser.new_context()
    page = await context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    await page.goto(f"{origin}/sdk-test/page.html")
    return page


async def join(page, sfu, identity: str, **options) -> str:
    ws = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
    token = json.dumps(sdk_token(sfu, identity))
    return await page.evaluate(f"join({token}, {json.dumps(ws)}, {json.dumps(options)})")


def receiving(entries, sources: dict[str, int]) -> bool:
    """Whether video is decoded and audio heard from each identity in ``sources`` (its number
    of video tracks)."""
    for identity, videos in sources.items():
        mine = [e for e in entries or [] if e["identity"] == identity]
        if sum(1 for e in mine if e["kind"] == "video" and e["frames"] > 0) < videos:
            return False
        if not any(e["kind"] == "audio" and e["energy"] > 0 for e in mine):
            return False
    return True


async def logged(page, line: str, timeout: float = 30) -> list[str]:
    log = await wait_for(lambda: page.evaluate("window.log"), lambda log: line in log, timeout)
    assert line in log, log
    return log


async def frames_of(page, identity: str, kind: str = "video") -> int:
    entries = await page.evaluate("inbound()")
    return sum(e["frames"] for e in entries if e["identity"] == identity and e["kind"] == kind)


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
                    assert (frames[-1].width, frames[-1].height) == (640, 480)

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
        await sfu.context.rooms.complete_room(room.sid)
        log = await wait_for(
            lambda: alice.evaluate("window.log"),
            lambda log: any(line.startswith("disconnected") for line in log),
            30,
        )
        assert "disconnected 53118" in log
        await asyncio.sleep(0)
