"""The adaptation issue's room: two pages on this host and one behind a capped link.

alice and bob join on this host (their view of each other alone is the baseline), then carol
joins from a network namespace whose link ``tbf`` caps each way; every camera is a sharp one
(``qoe.real_camera_flag``). After a settle, what each page decodes of each remote camera over
a window, from Chromium's ``getStats()``, and each of the issue's bars with whether it held.
The browser test asserts the bars; ``benchmarks/adaptation.py`` reports them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from edge_sfu.media import MediaSettings
from tests.support.browser import CHROMIUM, chromium, joined_page
from tests.support.netns import SlowHost
from tests.support.qoe import CAMERA_SIZE, Seen, real_camera_flag, report, watch
from tests.support.sfu import running_sfu

CAP_KBIT = 400
SETTLE_S = 15.0
WINDOW_S = 30.0


@dataclass(frozen=True)
class ThreePages:
    """What the pages saw: alice and bob alone, then all three; and the bars."""

    alone: dict[str, dict[str, Seen]]
    seen: dict[str, dict[str, Seen]]
    bars: dict[str, bool]

    def __str__(self) -> str:
        failed = [bar for bar, held in self.bars.items() if not held]
        return (
            f"alone:\n{report(self.alone)}\nwith carol:\n{report(self.seen)}\n"
            f"bars not met: {failed or 'none'}"
        )


def _bars(alone: dict[str, dict[str, Seen]], seen: dict[str, dict[str, Seen]]) -> dict[str, bool]:
    top = CAMERA_SIZE[0]
    return {
        "carol decodes each camera at 12 fps or more": all(
            seen["carol"][r].fps >= 12 for r in ("alice", "bob")
        ),
        "carol's cameras frozen 2 s or less each": all(
            seen["carol"][r].frozen_s <= 2 for r in ("alice", "bob")
        ),
        "carol gets a smaller size": all(
            0 < seen["carol"][r].width < top for r in ("alice", "bob")
        ),
        "alice and bob decode carol at 12 fps or more": all(
            seen[v]["carol"].fps >= 12 for v in ("alice", "bob")
        ),
        "alice and bob see each other at full size and 90 % of the frame rate alone": all(
            seen[v][r].width == top and seen[v][r].fps >= 0.9 * alone[v][r].fps
            for v, r in (("alice", "bob"), ("bob", "alice"))
        ),
    }


async def three_page_room(data_dir: Path, host: SlowHost, scripts: Path) -> ThreePages:
    """Run the room with carol behind ``host`` capped at ``CAP_KBIT`` each way (the cap is
    lifted again at the end)."""
    camera = real_camera_flag(scripts)
    media = MediaSettings(host_addresses=(host.gateway,))
    host.set_rate(CAP_KBIT)
    try:
        async with running_sfu(data_dir, host=host.gateway, media=media) as sfu:
            secure = f"--unsafely-treat-insecure-origin-as-secure={sfu.base}"
            inside = host.executable(CHROMIUM, scripts)
            async with (
                chromium(secure, camera) as one,
                chromium(secure, camera) as two,
                chromium(secure, camera, executable=inside) as slow,
            ):
                alice = await joined_page(one, sfu.base, sfu.token("alice"))
                bob = await joined_page(two, sfu.base, sfu.token("bob"))
                await asyncio.sleep(SETTLE_S)
                alone = await watch({"alice": alice, "bob": bob}, WINDOW_S)
                carol = await joined_page(slow, sfu.base, sfu.token("carol"))
                await asyncio.sleep(SETTLE_S)
                seen = await watch({"alice": alice, "bob": bob, "carol": carol}, WINDOW_S)
    finally:
        host.set_rate(None)
    return ThreePages(alone, seen, _bars(alone, seen))
