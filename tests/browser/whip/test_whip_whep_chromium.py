"""Chromium as an independent WHIP publisher (simulcast) and WHEP player of a unit's room.

The pages are the test's own, on another origin than the unit (so CORS is exercised), and use
nothing but ``fetch`` and ``RTCPeerConnection``: the publisher posts its offer before any
candidate is gathered and trickles every candidate through PATCH.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.support.browser import INBOUND_JS, chromium, joined_page, open_page, require_chromium
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for
from tests.support.web import served

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PAGE = """<!doctype html><meta charset="utf-8"><title>WHIP/WHEP</title>
<script>
function fragment(pc, candidates) {
  const sdp = pc.localDescription.sdp;
  const ufrag = sdp.match(/a=ice-ufrag:(\\S+)/)[1], pwd = sdp.match(/a=ice-pwd:(\\S+)/)[1];
  const mline = sdp.split('\\r\\n').find((l) => l.startsWith('m='));
  const mid = sdp.match(/a=mid:(\\S+)/)[1];
  let body = `a=ice-ufrag:${ufrag}\\r\\na=ice-pwd:${pwd}\\r\\n${mline}\\r\\na=mid:${mid}\\r\\n`;
  for (const c of candidates) body += c ? `a=${c.candidate}\\r\\n` : 'a=end-of-candidates\\r\\n';
  return body;
}

async function start(pc, url, token) {
  // The offer goes out at once; candidates follow in PATCH requests as they are gathered.
  const queued = [];
  let session = null;
  const patches = [];
  const patch = async (candidates) => {
    const response = await fetch(session.location, {method: 'PATCH', headers: {
      'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': session.etag,
      'Authorization': `Bearer ${token}`}, body: fragment(pc, candidates)});
    patches.push(response.status);
  };
  pc.onicecandidate = (event) => {
    if (session) patch([event.candidate]); else queued.push(event.candidate);
  };
  await pc.setLocalDescription(await pc.createOffer());
  const response = await fetch(url, {method: 'POST', body: pc.localDescription.sdp, headers: {
    'Content-Type': 'application/sdp', 'Authorization': `Bearer ${token}`}});
  if (response.status !== 201) throw new Error(`${response.status} ${await response.text()}`);
  session = {location: new URL(response.headers.get('Location'), url).href,
             etag: response.headers.get('ETag'), patches, pc, token};
  await pc.setRemoteDescription({type: 'answer', sdp: await response.text()});
  if (queued.length) await patch(queued);
  return session;
}

async function whipPublish(url, token) {
  const media = await navigator.mediaDevices.getUserMedia(
    {video: {width: 640, height: 480, frameRate: 30}, audio: true});
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) {
    // video in two simulcast layers, lowest first
    const sendEncodings = track.kind === 'video'
      ? [{rid: 'l', scaleResolutionDownBy: 2}, {rid: 'h'}] : undefined;
    pc.addTransceiver(track, {direction: 'sendonly', sendEncodings});
  }
  window.whip = await start(pc, url, token);
  return window.whip.location;
}

async function whepPlay(name, url, token, kinds) {
  const pc = new RTCPeerConnection();
  pc.ontrack = (event) => {  // played as a player would: audio is decoded for its output
    const element = document.createElement(event.track.kind);
    element.autoplay = true;
    element.srcObject = new MediaStream([event.track]);
    document.body.append(element);
  };
  for (const kind of kinds) pc.addTransceiver(kind, {direction: 'recvonly'});
  window[name] = await start(pc, url, token);
  return window[name].location;
}

async function inbound(name) {
  const out = [];
  for (const receiver of window[name].pc.getReceivers()) {
    const stats = [...(await receiver.getStats()).values()].find((s) => s.type === 'inbound-rtp');
    if (!stats) continue;
    out.push({kind: stats.kind, framesDecoded: stats.framesDecoded || 0,
      frameWidth: stats.frameWidth || 0, frameHeight: stats.frameHeight || 0,
      totalAudioEnergy: stats.totalAudioEnergy || 0, packetsReceived: stats.packetsReceived || 0});
  }
  return out;
}

async function end(name) {
  const s = window[name];
  const response = await fetch(s.location, {method: 'DELETE',
    headers: {'Authorization': `Bearer ${s.token}`}});
  s.pc.close();
  return response.status;
}
</script>
"""


@contextlib.asynccontextmanager
async def page_server() -> AsyncIterator[str]:
    """The test's WHIP/WHEP page, on an origin of its own."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    async with served(app) as base:
        yield f"{base}/"


def _video_of(entries: Any, identity: str) -> dict[str, Any] | None:
    found = [e for e in entries or [] if e["identity"] == identity and e["kind"] == "video"]
    return found[0] if found else None


async def _frame_rate(read: Any, select: Any, seconds: float = 3.0) -> float:
    before = select(await read())["framesDecoded"]
    await asyncio.sleep(seconds)
    return (select(await read())["framesDecoded"] - before) / seconds


async def test_chromium_publishes_through_whip_and_plays_through_whep(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu, page_server() as page_url, chromium() as browser:
        # a browser in the room (the participant the WHEP player plays)
        ann = await joined_page(browser, sfu.base, sfu.token("ann"))
        whip_page = await open_page(browser, page_url)
        location = await whip_page.evaluate(
            "([u, t]) => whipPublish(u, t)", [f"{sfu.base}/whip/room1", sfu.token("encoder")]
        )
        assert "/whip-sessions/" in location

        # the join page decodes the WHIP publisher at its size (the top layer) and rate
        entries = await wait_for(
            lambda: ann.evaluate(INBOUND_JS),
            lambda e: (
                (v := _video_of(e, "encoder")) is not None
                and v["framesDecoded"] > 10
                and (v["frameWidth"], v["frameHeight"]) == (640, 480)
            ),
            60,
            "the join page decoding the WHIP publisher's top layer",
        )
        rate = await _frame_rate(
            lambda: ann.evaluate(INBOUND_JS), lambda e: _video_of(e, "encoder")
        )
        video = _video_of(await ann.evaluate(INBOUND_JS), "encoder")
        assert video is not None and (video["frameWidth"], video["frameHeight"]) == (640, 480)
        assert rate >= 15, f"{rate:.1f} frames/s"
        audio = [e for e in entries if e["identity"] == "encoder" and e["kind"] == "audio"]
        assert audio, entries
        patches = await whip_page.evaluate("() => window.whip.patches")
        assert patches and set(patches) == {204}, patches  # every candidate trickled
        room = sfu.context.rooms.live_room_by_name("room1")
        encoder = room.by_identity("encoder")
        assert sorted(t.kind for t in encoder.published.values()) == ["audio", "video"]
        (video_sid,) = [t.sid for t in encoder.published.values() if t.kind == "video"]
        producer = sfu.signaling.routers[room.sid].producers[video_sid]
        assert list(producer.layers) == ["l", "h"]  # the offer's simulcast, taken
        assert all(layer.bitrate_bps > 0 for layer in producer.layers.values())

        # WHEP: ann's camera and microphone, and the room's audio (both microphones)
        whep_page = await open_page(browser, page_url)
        await whep_page.evaluate(
            "([u, t]) => whepPlay('ann', u, t, ['video', 'audio'])",
            [f"{sfu.base}/whep/room1/ann", sfu.token("player")],
        )
        await whep_page.evaluate(
            "([u, t]) => whepPlay('room', u, t, ['audio', 'audio'])",
            [f"{sfu.base}/whep/room1", sfu.token("listener")],
        )
        played = await wait_for(
            lambda: whep_page.evaluate("() => inbound('ann')"),
            lambda e: (
                any(s["kind"] == "video" and s["framesDecoded"] > 10 for s in e)
                and any(s["kind"] == "audio" and s["totalAudioEnergy"] > 0 for s in e)
            ),
            60,
            "the WHEP player decoding ann",
        )
        assert [s["kind"] for s in played] == ["video", "audio"]
        # ann sends two simulcast layers; the allocator moves the player up to the full one
        await wait_for(
            lambda: whep_page.evaluate("() => inbound('ann')"),
            lambda e: (e[0]["frameWidth"], e[0]["frameHeight"]) == (640, 480),
            60,
            "the WHEP player on ann's full layer",
        )
        heard = await wait_for(
            lambda: whep_page.evaluate("() => inbound('room')"),
            lambda e: len([s for s in e if s["totalAudioEnergy"] > 0]) == 2,
            60,
            "the room's two microphones",
        )
        assert len(heard) == 2
        listener = room.by_identity("listener")
        assert {
            room.participants[p.publisher_sid].identity for p in listener.subscribed.values()
        } == {
            "ann",
            "encoder",
        }

        # the viewers are participants while connected; DELETE removes them
        names = "() => [...window.edgeRoom.participants.values()].map((p) => p.identity)"
        await wait_for(lambda: ann.evaluate(names), lambda n: {"player", "listener"} <= set(n), 10)
        assert await whep_page.evaluate("() => end('ann')") == 200
        assert await whep_page.evaluate("() => end('room')") == 200
        await wait_for(
            lambda: ann.evaluate(names), lambda n: not {"player", "listener"} & set(n), 10
        )
        assert room.by_identity("player") is None and room.by_identity("listener") is None
        assert await whip_page.evaluate("() => end('whip')") == 200
        await wait_for(lambda: ann.evaluate(names), lambda n: "encoder" not in n, 10)
