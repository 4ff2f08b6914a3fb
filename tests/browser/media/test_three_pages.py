"""The adaptation issue's room, in real headless Chromium: alice and bob on this host (two
pages of one browser, each in its own context), carol behind a link capped at 400 kbit/s
each way (a network namespace shaped with ``tbf``).

Over a 30 s window after a 15 s settle (``tests.support.three_pages``), from each page's own
``getStats()``: carol decodes each remote camera at 12 fps or more, at a smaller size, with
at most 2 s frozen; alice and bob decode carol at 12 fps or more; and each sees the other's
full layer (the top encoding the other's browser sends, which its CPU adaptation may have made
smaller than the camera on a busy host), decoding 90 % or more of the share
of the other's top-layer frames they decode once carol's cap is lifted (all three still in the
room, so the host runs three pages in both windows). The share, not the bare frame rate: the
browsers' encoders run at what a busy 2-core host leaves them, differently in each window, and
the unit cannot forward a frame that was never encoded. Then the same room and bars with
carol as the Python client (its own decoded frames and freezes, counted as Chromium counts
them).
"""

from __future__ import annotations

import pytest

from tests.support.browser import require_chromium
from tests.support.netns import scratch_dir, slow_host
from tests.support.three_pages import three_page_room

pytestmark = [pytest.mark.browser, pytest.mark.timeout(400)]


async def test_a_capped_participant_and_two_fast_ones_all_keep_moving(tmp_path):
    require_chromium()
    with slow_host() as host, scratch_dir() as scripts:
        room = await three_page_room(tmp_path, host, scripts)
    assert all(room.bars.values()), str(room)


async def test_the_python_client_as_the_capped_participant_holds_up_the_same(tmp_path):
    require_chromium()
    with slow_host() as host, scratch_dir() as scripts:
        room = await three_page_room(tmp_path, host, scripts, carol="python")
    assert all(room.bars.values()), str(room)
