"""Kiosk benchmark: press-to-first-frame, start-up to READY, memory idle and in a call.

Runs the real daemon (simulated hardware) as a subprocess, a headless Chromium participant
in the kiosk's room, and two Python (aiortc) participants for the 4-participant call.
Baseline in the same run: a bare aiohttp server process (start-up time and RSS), so the
figures read as ratios too. Last line of output: one JSON object.

    .venv/bin/python benchmarks/kiosk.py
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.control.client import press, status  # noqa: E402
from tests.support.browser import chromium, open_page  # noqa: E402
from tests.support.daemon import running_daemon  # noqa: E402
from tests.support.media import PatternVideoTrack, ToneAudioTrack  # noqa: E402

PRESSES = 8
BARE_SERVER = """
import socket, sys
from aiohttp import web
app = web.Application()
app.router.add_get("/", lambda r: web.Response(text="ok"))
sock = socket.socket(); sock.bind(("127.0.0.1", 0))
print("ready", flush=True)
web.run_app(app, sock=sock, print=None)
"""

FIRST_FRAME_JS = """
async (token) => {
  const m = await import('/static/edge-video.js');
  const room = await m.connect(token, { name: 'meeting-room', audio: false, video: false });
  window.edgeRoom = room;
  window.firstFrameAt = null;
  room.on('trackSubscribed', (track, pub, participant) => {
    if (track.kind !== 'video' || participant.identity !== 'kiosk') return;
    const receiver = room._pc.getReceivers().find((r) => r.track === track.mediaStreamTrack);
    const timer = setInterval(async () => {
      const stats = [...(await receiver.getStats()).values()].find((s) => s.type === 'inbound-rtp');
      if (stats && stats.framesDecoded > 0) {
        if (window.firstFrameAt === null) window.firstFrameAt = Date.now();
        clearInterval(timer);
      }
    }, 5);
  });
}
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bare_server() -> tuple[float, float]:
    """Start-up time and idle RSS of a bare aiohttp server process (the baseline)."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", BARE_SERVER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    elapsed = time.monotonic() - started
    time.sleep(1)
    rss = rss_mb(proc.pid)
    proc.terminate()
    proc.wait(10)
    return elapsed, rss


def start_to_ready(tmp: Path, runs: int = 3) -> list[float]:
    """Seconds from process start to systemd's READY=1, over a few cold starts."""
    times = []
    for i in range(runs):
        started = time.monotonic()
        with running_daemon(tmp, {"audio": {"enabled": False}}, name=f"start{i}") as daemon:
            at, _ = daemon.notify.wait_for_line("READY=1", 60)
            times.append(at - started)
    return times


async def press_to_first_frame(page, sock: Path) -> list[float]:
    """Milliseconds from a join press until the browser decodes the kiosk's first frame."""
    samples = []
    for _ in range(PRESSES):
        await page.evaluate("() => { window.firstFrameAt = null; }")
        pressed = time.time() * 1000
        await asyncio.to_thread(press, sock, "join")
        deadline = time.monotonic() + 30
        first = None
        while first is None and time.monotonic() < deadline:
            first = await page.evaluate("() => window.firstFrameAt")
            await asyncio.sleep(0.02)
        if first is None:
            raise RuntimeError("the browser decoded no frame of the kiosk within 30 s")
        samples.append(first - pressed)
        await asyncio.to_thread(press, sock, "join")  # leave
        deadline = time.monotonic() + 30
        while status(sock)["state"] != "idle" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    return samples


async def call_of_four(daemon, url: str) -> float:
    """RSS of the daemon while kiosk, browser and two Python participants are in a call."""
    from edge_sfu.client import connect

    sock = daemon.data_dir / "control.sock"
    await asyncio.to_thread(press, sock, "join")
    clients = []
    for i in range(2):
        token = daemon.cli("token", "--identity", f"py{i}", "--room", "meeting-room").stdout.strip()
        signaling = url.replace("http://", "ws://") + "/v1/signaling"
        clients.append(
            await connect(
                signaling, token, tracks=[PatternVideoTrack(320, 240, 15), ToneAudioTrack()]
            )
        )
    await asyncio.sleep(10)
    rss = rss_mb(daemon.proc.pid)
    count = len(status(sock)["rooms"][0]["participants"])
    for client in clients:
        await client.close()
    if count != 4:
        raise RuntimeError(f"expected 4 participants, saw {count}")
    return rss


async def run(tmp: Path) -> dict[str, object]:
    bare_start, bare_rss = bare_server()
    ready_times = start_to_ready(tmp)
    config = {"camera": {"backend": "synthetic"}, "audio": {"enabled": False}}
    with running_daemon(tmp, config, name="kiosk") as daemon:
        url = await asyncio.to_thread(daemon.wait_ready, 60)
        await asyncio.sleep(2)
        rss_idle = rss_mb(daemon.proc.pid)
        token = daemon.cli("token", "--identity", "viewer", "--room", "meeting-room").stdout.strip()
        async with chromium() as browser:
            page = await open_page(browser, f"{url}/join/meeting-room")
            await page.evaluate(FIRST_FRAME_JS, token)
            frames = await press_to_first_frame(page, daemon.data_dir / "control.sock")
            rss_call = await call_of_four(daemon, url)
    frames.sort()
    p95 = frames[min(len(frames) - 1, round(0.95 * (len(frames) - 1)))]
    ready = statistics.median(ready_times)
    return {
        "press_to_first_frame_ms_p50": round(statistics.median(frames), 1),
        "press_to_first_frame_ms_p95": round(p95, 1),
        "press_to_first_frame_ms_all": [round(x, 1) for x in frames],
        "start_to_ready_s": round(ready, 3),
        "rss_idle_mb": round(rss_idle, 1),
        "rss_call4_mb": round(rss_call, 1),
        "baseline_bare_aiohttp_start_s": round(bare_start, 3),
        "baseline_bare_aiohttp_rss_mb": round(bare_rss, 1),
        "ratio_start_vs_bare_aiohttp": round(ready / bare_start, 2),
        "ratio_rss_idle_vs_bare_aiohttp": round(rss_idle / bare_rss, 2),
        "loadavg_1m": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "hostname": socket.gethostname(),
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(Path(tmp)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
