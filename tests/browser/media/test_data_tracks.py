"""Data tracks between Chromium and the Python client (aiortc), through the SFU: both
directions, text and binary, reliable and lossy, the size limit, publishing and
unpublishing while connected, and a second page that joins later."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edge_sfu.client import RemoteDataTrack, connect
from tests.support.browser import chromium, join_now, open_page, require_chromium
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

JOIN_JS = """
async ([token, withTracks]) => {
  const m = await import('/static/edge-video.js');
  window.got = [];
  window.m = m;
  const tracks = [];
  if (withTracks) {
    window.chat = new m.LocalDataTrack({ name: 'chat' });
    window.cursor = new m.LocalDataTrack({ name: 'cursor', ordered: false, maxRetransmits: 0 });
    tracks.push(window.chat, window.cursor);
  }
  const room = await m.connect(token, { name: 'room1', tracks });
  window.edgeRoom = room;
  room.on('trackSubscribed', (track, publication, participant) => {
    if (track.kind !== 'data') return;
    track.on('message', (data) => {
      const body = typeof data === 'string' ? data : Array.from(new Uint8Array(data));
      window.got.push([participant.identity, track.name, body]);
    });
  });
}
"""

OPEN_JS = "(name) => window[name] && window[name]._channel?.readyState === 'open'"


async def data_tracks(room: Any, count: int, seen: set[str]) -> dict[str, RemoteDataTrack]:
    """The next ``count`` data tracks ``room`` receives (by name), skipping SIDs in ``seen``;
    subscriptions made before the call count too."""

    def fresh() -> dict[str, RemoteDataTrack]:
        return {
            pub.track.name: pub.track
            for who in room.participants.values()
            for pub in who.tracks.values()
            if isinstance(pub.track, RemoteDataTrack) and pub.sid not in seen
        }

    found = await wait_for(
        fresh, lambda tracks: len(tracks) >= count, timeout=60, what=f"{count} data tracks"
    )
    seen.update(track.sid for track in found.values())
    return found


def collect(track: RemoteDataTrack) -> list[Any]:
    messages: list[Any] = []
    track.on("message", messages.append)
    return messages


async def test_data_tracks_between_browser_and_python(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu:
        py = await connect(sfu.ws_url, sfu.token("py"))
        try:
            async with chromium() as browser:
                page = await open_page(browser, f"{sfu.base}/join/room1")
                await page.evaluate(JOIN_JS, [sfu.token("ann"), True])
                await page.wait_for_function(OPEN_JS, arg="chat", timeout=30_000)

                # browser -> Python: text and binary, in order on the reliable track
                seen: set[str] = set()
                tracks = await data_tracks(py, 2, seen)
                assert tracks["chat"].reliable and tracks["chat"].ordered
                assert not tracks["cursor"].ordered and tracks["cursor"].max_retransmits == 0
                chat_in, cursor_in = collect(tracks["chat"]), collect(tracks["cursor"])
                await wait_for(
                    lambda: tracks["chat"].channel.readyState, "open".__eq__, what="py chat open"
                )
                await page.evaluate(
                    """() => {
                      for (let i = 0; i < 20; i++) window.chat.send(`hello ${i}`);
                      window.chat.send(new Uint8Array([0, 1, 2, 255]));
                      for (let i = 0; i < 10; i++) window.cursor.send(`x=${i}`);
                    }"""
                )
                await wait_for(lambda: len(chat_in), (21).__eq__, what="21 chat messages")
                assert chat_in == [f"hello {i}" for i in range(20)] + [b"\x00\x01\x02\xff"]
                await wait_for(lambda: len(cursor_in), (10).__eq__, what="10 cursor messages")
                assert sorted(cursor_in) == sorted(f"x={i}" for i in range(10))

                # Python -> browser
                telemetry = await py.publish_data("telemetry")
                await page.wait_for_function(
                    "() => [...window.edgeRoom.participants.values()].some((p) =>"
                    " [...p.tracks.values()].some((t) => t.kind === 'data' && t.track"
                    " && t.track._channel.readyState === 'open'))",
                    timeout=30_000,
                )
                for i in range(5):
                    telemetry.send(f"t{i}")
                telemetry.send(b"\x10\x20")
                got = await wait_for(
                    lambda: page.evaluate("() => window.got"), lambda g: len(g) == 6, 20
                )
                assert got == [["py", "telemetry", f"t{i}"] for i in range(5)] + [
                    ["py", "telemetry", [16, 32]]
                ]

                # the size limit in the browser: refused before it leaves, with a code
                code = await page.evaluate(
                    "() => { try { window.chat.send('x'.repeat(16385)); return 0; }"
                    " catch (e) { return e.code; } }"
                )
                assert code == 53004
                assert await page.evaluate("() => window.chat.send('y'.repeat(16384))")
                await wait_for(lambda: len(chat_in), (22).__eq__, what="the limit-sized message")
                assert chat_in[-1] == "y" * 16384

                # publish and unpublish while connected; a duplicate name is refused
                late = await page.evaluate(
                    """async () => {
                      const t = new window.m.LocalDataTrack({ name: 'late' });
                      await window.edgeRoom.localParticipant.publishTrack(t);
                      window.late = t;
                      let refused = null;
                      try {
                        await window.edgeRoom.localParticipant.publishTrack(
                          new window.m.LocalDataTrack({ name: 'chat' }));
                      } catch (e) { refused = e.code; }
                      return { sid: t.sid, refused };
                    }"""
                )
                assert late["sid"].startswith("MT") and late["refused"] == 53304
                (late_track,) = (await data_tracks(py, 1, seen)).values()
                assert late_track.sid == late["sid"]
                gone = py.expect("track_unpublished", lambda pub, _who: pub.name == "cursor")
                await page.evaluate(
                    "() => window.edgeRoom.localParticipant.unpublishTrack(window.cursor)"
                )
                await asyncio.wait_for(gone, 20)
                await wait_for(
                    lambda: tracks["cursor"].channel.readyState,
                    "closed".__eq__,
                    what="cursor closed",
                )

                # a second page joining later receives both the browser's and Python's tracks
                page2 = await page.context.new_page()
                await page2.goto(f"{sfu.base}/join/room1")
                await page2.evaluate(JOIN_JS, [sfu.token("bea"), False])
                await page2.wait_for_function(
                    "() => [...window.edgeRoom.participants.values()].flatMap((p) =>"
                    " [...p.tracks.values()]).filter((t) => t.kind === 'data' && t.track"
                    " && t.track._channel.readyState === 'open').length === 3",
                    timeout=30_000,
                )
                await page.evaluate("() => window.chat.send('to everyone')")
                telemetry.send("from py")
                got2 = await wait_for(
                    lambda: page2.evaluate("() => window.got"), lambda g: len(g) == 2, 20
                )
                assert sorted(got2) == [
                    ["ann", "chat", "to everyone"],
                    ["py", "telemetry", "from py"],
                ]
                await wait_for(lambda: chat_in[-1], "to everyone".__eq__, what="the broadcast")

                # the join page (camera, microphone, grid) takes data tracks in its stride
                join = await page.context.new_page()
                errors: list[str] = []
                join.on("pageerror", lambda exc: errors.append(str(exc)))
                join.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                await join.goto(f"{sfu.base}/join/room1?token={sfu.token('cam')}")
                await join_now(join)
                await join.wait_for_function(
                    "() => window.edgeRoom && [...window.edgeRoom.participants.values()]"
                    ".flatMap((p) => [...p.tracks.values()]).filter((t) => t.kind === 'data'"
                    " && t.track).length === 3",
                    timeout=60_000,
                )
                await asyncio.sleep(0.5)
                assert errors == []
                await page.context.close()
        finally:
            await py.close()
