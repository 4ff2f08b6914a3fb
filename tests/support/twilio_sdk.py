"""Pages written for the official twilio-video.js SDK (from npm, ``node_modules``), served by
the test's own loopback server as an app's web server would serve them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

from tests.support.waiting import wait_for
from tests.support.web import served

SDK = Path(__file__).resolve().parents[2] / "node_modules/twilio-video/dist/twilio-video.min.js"

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
  room.on('trackPublishPriorityChanged',
    (prio, pub, p) => note('priority', p.identity, pub.kind, prio));
  room.on('reconnecting', (e) => note('reconnecting', e && e.code));
  room.on('reconnected', () => note('reconnected'));
  room.on('disconnected', (r, e) => note('disconnected', e ? e.code : 'none'));
  // media signaling: when each event first came (this page's clock)
  const first = (line) => { if (!(line in window.firstAt)) window.firstAt[line] = Date.now(); };
  room.on('dominantSpeakerChanged', (p) => {
    const line = 'dominantSpeaker ' + (p ? p.identity : 'none');
    note(line);
    first(line);
  });
  room.on('trackSwitchedOff', (t, pub, p) => note('trackSwitchedOff', p.identity, t.kind));
  room.on('trackSwitchedOn', (t, pub, p) => note('trackSwitchedOn', p.identity, t.kind));
  const quality = (p) => p.on('networkQualityLevelChanged',
    (level) => note('networkQuality', p.identity, level));
  quality(room.localParticipant);
  room.participants.forEach(quality);
  room.on('participantConnected', quality);
}
window.firstAt = {};
// The first publication of ``kind`` of the remote participant ``identity``.
function remotePublication(identity, kind) {
  const p = [...window.room.participants.values()].find((x) => x.identity === identity);
  return p && [...p.tracks.values()].find((pub) => pub.kind === kind);
}
async function join(token, wsServer, extra) {
  const data = new Twilio.Video.LocalDataTrack({name: 'chat'});
  window.data = data;
  const options = Object.assign({
    wsServer, insights: false, iceServers: [], audio: true, video: {width: 640, height: 480},
  }, extra || {});
  for (const key of Object.keys(options)) if (options[key] === null) delete options[key];
  if (options.muted) {  // join with the microphone published but disabled
    const audio = await Twilio.Video.createLocalAudioTrack();
    audio.disable();
    const video = await Twilio.Video.createLocalVideoTrack(options.video);
    options.tracks = [audio, video];
    for (const key of ['muted', 'audio', 'video']) delete options[key];
  }
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
// What this page sends of its first video track: each simulcast encoding's parameters
// (active, as the publisher hints left it) and its outbound-rtp figures, lowest first.
async function outbound() {
  const pc = window.room._signaling._peerConnectionManager._peerConnections.values().next().value
    ._peerConnection;
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === 'video');
  if (!sender) return null;
  const encodings = sender.getParameters().encodings.map((e) => ({active: e.active}));
  const stats = [...(await sender.getStats()).values()]
    .filter((s) => s.type === 'outbound-rtp')
    .map((s) => ({ssrc: s.ssrc, bytesSent: s.bytesSent || 0, frameWidth: s.frameWidth || 0,
      active: s.active}));
  return {encodings, stats};
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
    async with served(app) as base:
        yield base


async def sdk_page(browser, origin: str, requests: list[str]):
    context = await browser.new_context()
    page = await context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    await page.goto(f"{origin}/sdk-test/page.html")
    return page


async def join(page: Any, sfu: Any, identity: str, **options: Any) -> str:
    """Join ``room1`` of a ``running_sfu`` with a twilio-python token."""
    ws = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
    return await join_with(page, ws, sdk_token(sfu, identity), **options)


async def join_with(page: Any, ws_server: str, token: str, **options: Any) -> str:
    """``Twilio.Video.connect`` on ``page`` (options merged over the page's defaults)."""
    args = ", ".join(json.dumps(a) for a in (token, ws_server, options))
    return str(await page.evaluate(f"join({args})"))


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


async def received(page: Any) -> dict[str, float]:
    """What ``page`` receives, compactly: {"identity/video": frames, "identity/audio": energy}."""
    out: dict[str, float] = {}
    for e in await page.evaluate("inbound()"):
        key = f"{e['identity']}/{e['kind']}"
        out[key] = out.get(key, 0) + (e["frames"] if e["kind"] == "video" else e["energy"])
    return out


async def logged(page, line: str, timeout: float = 30) -> list[str]:
    log = await wait_for(lambda: page.evaluate("window.log"), lambda log: line in log, timeout)
    assert line in log, log
    return log


async def frames_of(page, identity: str, kind: str = "video") -> int:
    entries = await page.evaluate("inbound()")
    return sum(e["frames"] for e in entries if e["identity"] == identity and e["kind"] == kind)
