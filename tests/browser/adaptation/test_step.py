"""A link that drops to 300 kbit/s mid-call, then recovers: the subscriber follows it.

Two join pages: alice on this host, carol in a network namespace whose link is first
uncapped, then capped at 300 kbit/s each way, then uncapped again. Carol's view of alice is
read from her page's ``getStats()`` every 200 ms: the decoded size says which layer she gets,
and the freeze counters say how long each freeze lasted.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from edge_sfu.media import MediaSettings
from tests.support.browser import CHROMIUM, chromium, joined_page, require_chromium
from tests.support.netns import scratch_dir, slow_host
from tests.support.qoe import CAMERA_SIZE, INBOUND_VIDEO_JS, OUTBOUND_VIDEO_JS, real_camera_flag
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

STEP_KBIT = 300
FULL_WIDTH = CAMERA_SIZE[0]
POLL_S = 0.2


async def _follow(page, other: str, seconds: float, until=None) -> list[tuple[float, dict]]:
    """Samples of ``page``'s view of ``other`` for up to ``seconds`` (or until ``until``)."""
    samples: list[tuple[float, dict]] = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        view = (await page.evaluate(INBOUND_VIDEO_JS) or {}).get(other)
        if view is not None:
            samples.append((time.monotonic() - start, view))
            if until is not None and until(view):
                break
        await asyncio.sleep(POLL_S)
    return samples


async def _top_layer_bps(page) -> float:
    """What ``page`` sends on its top simulcast layer (bit/s, over a second)."""

    def top(entries) -> int:
        return max((e["bytesSent"] for e in entries if e["rid"] == "f"), default=0)

    before = top(await page.evaluate(OUTBOUND_VIDEO_JS))
    await asyncio.sleep(1.0)
    return (top(await page.evaluate(OUTBOUND_VIDEO_JS)) - before) * 8.0


def _timeline(samples: list[tuple[float, dict]]) -> str:
    """The samples where the picture changed size or froze (for a failure's message)."""
    out = []
    for (_, a), (t, b) in itertools.pairwise(samples):
        if b["freezeCount"] != a["freezeCount"] or b["frameWidth"] != a["frameWidth"]:
            out.append(
                f"{t:.1f}s {b['frameWidth']}px frames={b['framesDecoded']} "
                f"freezes={b['freezeCount']}/{b['totalFreezesDuration']:.2f}s"
            )
    return "; ".join(out)


def _longest_freeze(samples: list[tuple[float, dict]]) -> float:
    """The longest single freeze in the samples (each freeze ends within one poll)."""
    longest = 0.0
    for (_, a), (_, b) in itertools.pairwise(samples):
        count = b["freezeCount"] - a["freezeCount"]
        if count > 0:
            longest = max(longest, (b["totalFreezesDuration"] - a["totalFreezesDuration"]) / count)
    return longest


async def test_a_subscriber_steps_down_within_5_s_and_back_up_within_20_s(tmp_path) -> None:
    require_chromium()
    with slow_host() as host, scratch_dir() as scripts:
        media = MediaSettings(host_addresses=(host.gateway,))
        async with running_sfu(tmp_path, host=host.gateway, media=media) as sfu:
            secure = f"--unsafely-treat-insecure-origin-as-secure={sfu.base}"
            inside = host.executable(CHROMIUM, scripts)
            camera = real_camera_flag(scripts)
            async with (
                chromium(secure, camera) as fast,
                chromium(secure, executable=inside) as slow,
            ):
                alice = await joined_page(fast, sfu.base, sfu.token("alice"))
                carol = await joined_page(slow, sfu.base, sfu.token("carol"))
                # mid-call at full quality: alice's sender enables its top layer once its
                # own estimate has ramped up (later on a busy machine, whose encoder also
                # adapts to CPU), and sends it at well above the cap to come
                settled = await _follow(
                    carol, "alice", 90, until=lambda v: v["frameWidth"] == FULL_WIDTH
                )
                top = settled[-1][1]["frameWidth"]
                assert top == FULL_WIDTH, settled[-1]
                rate = await wait_for(
                    lambda: _top_layer_bps(alice), lambda bps: bps > 2 * STEP_KBIT * 1000, 60
                )
                assert rate > 2 * STEP_KBIT * 1000, rate

                host.set_rate(STEP_KBIT)
                down = await _follow(carol, "alice", 5.0, until=lambda v: 0 < v["frameWidth"] < top)
                stepped = down[-1]
                after = await _follow(carol, "alice", 15.0)

                host.set_rate(None)
                up = await _follow(carol, "alice", 20.0, until=lambda v: v["frameWidth"] == top)

    assert 0 < stepped[1]["frameWidth"] < top, (
        f"still {stepped[1]} {stepped[0]:.1f} s after the cap"
    )
    # from the first sample on the lower layer on
    longest = _longest_freeze(down[-1:] + after)
    assert longest <= 1.0, f"a freeze of {longest:.2f} s after the step down: " + _timeline(
        down + after
    )
    assert up[-1][1]["frameWidth"] == top, f"{up[-1][1]} {up[-1][0]:.1f} s after the cap lifted"
