"""Adaptation benchmark: how a call follows a link that is capped, stepped down and lifted.

Real Chromium pages (Debian's, headless, fake camera) on the unit's own browser client,
an in-process SFU, and one page in a network namespace behind a ``tbf``-shaped veth
(``tests.support.netns``). Four measurements, all in one run:

* **caps**: alice (this host) and carol (the namespace) in a room, carol's link capped at
  300 kbit/s, 1 Mbit/s and not at all; over a 20 s window after a 12 s settle, what carol
  decodes of alice and alice of carol (frame rate, time frozen, size), from ``getStats()``.
* **step down**: carol's link goes from uncapped to 300 kbit/s: seconds until carol decodes
  alice at a smaller size.
* **step up**: the cap is lifted: seconds until carol is back on alice's top layer.
* **longest freeze after the step**: from a second after carol's switch to the smaller
  layer until the cap is lifted (Chromium's ``freezeCount`` and ``totalFreezesDuration``,
  polled every 0.25 s).
* **three pages**: the adaptation issue's room. alice and bob on this host, carol behind
  400 kbit/s, every camera a sharp one (``tests.support.qoe.real_camera_flag``); over 30 s
  after a 15 s settle, each page's view of each remote camera; then carol's cap lifted and,
  over another 30 s after a settle, alice's and bob's view of each other (the baseline); and
  each of the issue's bars with whether it was met.
* **CPU**: four pages publishing and watching each other; the SFU process's CPU time per
  forwarded packet over 15 s, with the camera in three simulcast layers and, as the
  baseline of the same run, in one.

Needs root (network namespaces) and Debian's chromium. Runs with no arguments in under ten
minutes; the last line of output is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge_sfu.media import MediaSettings  # noqa: E402
from tests.support.browser import CHROMIUM, chromium, joined_page, open_page  # noqa: E402
from tests.support.netns import SlowHost, scratch_dir, slow_host  # noqa: E402
from tests.support.qoe import Seen, longest_freeze, until_view, watch  # noqa: E402
from tests.support.sfu import running_sfu  # noqa: E402
from tests.support.three_pages import three_page_room  # noqa: E402

CAPS_KBIT: tuple[int | None, ...] = (300, 1000, None)
SETTLE_S = 12.0
WINDOW_S = 20.0
STEP_LIMIT_S = 30.0
STEP_HOLD_S = 20.0
CPU_WINDOW_S = 15.0
CPU_PARTIES = 4

#: Join a room with the unit's browser client directly (no join page UI), so the test
#: chooses the camera's codec plan: simulcast layers or one stream.
CONNECT_JS = """
async ({token, simulcast}) => {
  const m = await import('/static/edge-video.js');
  const codecs = simulcast ? 'auto' : [{codec: 'VP8', simulcast: false}];
  const room = await m.connect(token, {video: {width: 960, height: 540},
                                       preferredVideoCodecs: codecs});
  window.edgeRoom = room;
  return room.state;
}
"""


async def _caps_and_steps(data_dir: Path, host: SlowHost, scripts: Path) -> dict[str, Any]:
    media = MediaSettings(host_addresses=(host.gateway,))
    out: dict[str, Any] = {"caps": {}}
    async with running_sfu(data_dir, host=host.gateway, media=media) as sfu:
        secure = f"--unsafely-treat-insecure-origin-as-secure={sfu.base}"
        inside = host.executable(CHROMIUM, scripts)
        async with chromium(secure) as fast, chromium(secure, executable=inside) as slow:
            alice = await joined_page(fast, sfu.base, sfu.token("alice"))
            carol = await joined_page(slow, sfu.base, sfu.token("carol"))
            pages = {"alice": alice, "carol": carol}
            top = 0
            for cap in CAPS_KBIT:
                host.set_rate(cap)
                await asyncio.sleep(SETTLE_S)
                seen = await watch(pages, WINDOW_S)
                name = f"{cap}kbit" if cap else "none"
                out["caps"][name] = {
                    viewer: {other: _seen(s) for other, s in remotes.items()}
                    for viewer, remotes in seen.items()
                }
                if cap is None:
                    top = seen["carol"]["alice"].width
            # uncapped now, on the top layer: step down, then lift
            host.set_rate(300)
            stepped = time.monotonic()
            out["step_down_s"] = await until_view(
                carol, "alice", lambda v: 0 < v["frameWidth"] < top, STEP_LIMIT_S
            )
            out["longest_freeze_after_step_s"] = await longest_freeze(
                carol, "alice", stepped + STEP_HOLD_S
            )
            host.set_rate(None)
            out["step_up_s"] = await until_view(
                carol, "alice", lambda v: v["frameWidth"] >= top, STEP_LIMIT_S
            )
            out["top_width"] = top
    return out


def _seen(s: Seen) -> dict[str, Any]:
    """One view's figures, rounded for the JSON line."""
    size = f"{s.width}x{s.height}"
    return {"fps": round(s.fps, 1), "frozen_s": round(s.frozen_s, 2), "size": size}


async def _three_pages(data_dir: Path, host: SlowHost, scripts: Path) -> dict[str, Any]:
    """The adaptation issue's room (``tests.support.three_pages``): its figures, and each of
    its bars with whether it held."""
    room = await three_page_room(data_dir, host, scripts)
    return {
        "capped": {v: {r: _seen(s) for r, s in rs.items()} for v, rs in room.seen.items()},
        "uncapped": {v: {r: _seen(s) for r, s in rs.items()} for v, rs in room.uncapped.items()},
        "top_layer_encoded_fps": {
            window: {name: round(fps, 1) for name, fps in rates.items()}
            for window, rates in zip(("capped", "uncapped"), room.encoded, strict=True)
        },
        "bars": room.bars,
    }


def _forwarded(sfu: Any) -> int:
    return sum(
        getattr(consumer, "packets_sent", 0)
        for router in sfu.signaling.routers.values()
        for transport in router.transports.values()
        for consumer in transport.consumers.values()
    )


async def _cpu_per_packet(data_dir: Path, simulcast: bool) -> dict[str, float]:
    loopback = MediaSettings(host_addresses=("127.0.0.1",))
    async with running_sfu(data_dir, media=loopback) as sfu, chromium() as browser:
        pages = []
        for i in range(CPU_PARTIES):
            page = await open_page(browser, f"{sfu.base}/join/room1", bypass_csp=True)
            token = sfu.token(f"p{i}")
            state = await page.evaluate(CONNECT_JS, {"token": token, "simulcast": simulcast})
            assert state == "connected", state
            pages.append(page)
        await asyncio.sleep(SETTLE_S)
        cpu0, packets0 = time.process_time(), _forwarded(sfu)
        await asyncio.sleep(CPU_WINDOW_S)
        cpu1, packets1 = time.process_time(), _forwarded(sfu)
    packets = packets1 - packets0
    return {
        "packets_per_s": round(packets / CPU_WINDOW_S),
        "cpu_us_per_packet": round((cpu1 - cpu0) / max(1, packets) * 1e6, 2),
    }


async def main() -> dict[str, Any]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ea-adapt-") as tmp:
        base = Path(tmp)
        with slow_host() as host, scratch_dir() as scripts:
            result = await _caps_and_steps(base / "caps", host, scripts)
            result["three_pages"] = await _three_pages(base / "room", host, scripts)
        single = await _cpu_per_packet(base / "single", simulcast=False)
        layered = await _cpu_per_packet(base / "simulcast", simulcast=True)
    result["cpu"] = {
        "one_stream": single,
        "simulcast": layered,
        "ratio": round(layered["cpu_us_per_packet"] / max(0.01, single["cpu_us_per_packet"]), 2),
    }
    result["machine"] = f"{platform.machine()} {platform.processor() or ''}".strip()
    result["date"] = datetime.now(UTC).strftime("%Y-%m-%d")
    result["seconds"] = round(time.monotonic() - started)
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
