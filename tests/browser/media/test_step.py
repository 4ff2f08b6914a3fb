"""A subscriber's link steps down mid-call and back up, in real headless Chromium.

alice on this host and carol in a network namespace (``tbf`` on its veth), both on the join
page. Once carol decodes alice at her top layer, carol's link is capped at 300 kbit/s each
way: carol is on a smaller layer within 5 s, with no freeze longer than 1 s afterwards
(Chromium's ``freezeCount`` and ``totalFreezesDuration``). The cap is lifted: carol is back on
alice's top layer within 20 s.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from edge_sfu.media import MediaSettings
from tests.support.browser import CHROMIUM, chromium, joined_page, require_chromium
from tests.support.netns import scratch_dir, slow_host
from tests.support.qoe import CAMERA_SIZE, longest_freeze, until_view
from tests.support.sfu import describe_downlinks, running_sfu

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

STEP_KBIT = 300
#: How long after the step its freezes are watched (s).
HOLD_S = 20.0


async def test_a_subscriber_steps_down_within_5_s_and_back_up_within_20_s(tmp_path):
    require_chromium()
    top = CAMERA_SIZE[0]
    with slow_host() as host, scratch_dir() as scripts:
        media = MediaSettings(host_addresses=(host.gateway,))
        async with running_sfu(tmp_path, host=host.gateway, media=media) as sfu:
            secure = f"--unsafely-treat-insecure-origin-as-secure={sfu.base}"
            inside = host.executable(CHROMIUM, scripts)
            async with chromium(secure) as fast, chromium(secure, executable=inside) as slow:
                await joined_page(fast, sfu.base, sfu.token("alice"))
                carol = await joined_page(slow, sfu.base, sfu.token("carol"))
                # the top layer before the step (the join page shows a single remote large)
                on_top = await until_view(carol, "alice", lambda v: v["frameWidth"] >= top, 60)
                assert on_top is not None, "carol never decoded alice's top layer"
                await asyncio.sleep(3)
                host.set_rate(STEP_KBIT)
                stepped = time.monotonic()
                down = await until_view(carol, "alice", lambda v: 0 < v["frameWidth"] < top, 30)
                freeze = await longest_freeze(carol, "alice", stepped + HOLD_S)
                host.set_rate(None)
                up = await until_view(carol, "alice", lambda v: v["frameWidth"] >= top, 40)
                downlinks = describe_downlinks(sfu)
    assert down is not None and down <= 5.0, f"smaller layer after {down} s\n{downlinks}"
    assert freeze is not None and freeze <= 1.0, (
        f"longest freeze after the step {freeze} s\n{downlinks}"
    )
    assert up is not None and up <= 20.0, f"top layer again after {up} s\n{downlinks}"
