"""SIGTERM during a call: STOPPING=1, the browser sees the kiosk leave, a clean exit in bound."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.browser import chromium, open_page, require_chromium
from tests.support.daemon import running_daemon
from tests.support.waiting import wait_for

pytestmark = pytest.mark.browser

WATCH_JS = """
async (token) => {
  const m = await import('/static/edge-video.js');
  const room = await m.connect(token, { name: 'meeting-room', audio: false, video: false });
  window.edgeRoom = room;
  window.seen = [];
  room.on('participantConnected', (p) => window.seen.push('connected:' + p.identity));
  room.on('participantDisconnected', (p) => window.seen.push('left:' + p.identity));
  room.on('disconnected', (_room, err) => window.seen.push('room:' + (err ? err.code : '-')));
}
"""


async def test_sigterm_in_a_call_leaves_then_exits_cleanly(tmp_path: Path):
    require_chromium()
    config = {"camera": {"backend": "synthetic", "framerate": 15}, "audio": {"enabled": False}}
    with running_daemon(tmp_path, config) as daemon:
        url = await asyncio.to_thread(daemon.wait_ready, 60)
        token = daemon.cli("token", "--identity", "viewer", "--room", "meeting-room").stdout.strip()
        async with chromium() as browser:
            page = await open_page(browser, f"{url}/join/meeting-room")
            await page.evaluate(WATCH_JS, token)
            assert daemon.cli("press", "join").returncode == 0
            seen = await wait_for(
                lambda: page.evaluate("() => window.seen"), lambda s: "connected:kiosk" in s, 30
            )
            assert "connected:kiosk" in seen, seen

            started = time.monotonic()
            code = await asyncio.to_thread(daemon.stop, 20)
            elapsed = time.monotonic() - started
            assert code == 0
            assert elapsed < 20, elapsed  # the unit's TimeoutStopSec
            assert "STOPPING=1" in daemon.notify.lines()
            seen = await wait_for(
                lambda: page.evaluate("() => window.seen"),
                lambda s: any(x.startswith("room:") for x in s),
                20,
            )
            # The kiosk left the room before the room itself was completed.
            assert "left:kiosk" in seen, seen
            assert seen.index("left:kiosk") < next(
                i for i, x in enumerate(seen) if x.startswith("room:")
            ), seen
