"""The Python client publishing from behind a 400 kbit/s link (a network namespace capped
with tbf): the SFU's REMB carries its receive-side estimate, so aiortc's encoder follows the
uplink instead of flooding it."""

from __future__ import annotations

import asyncio
import time

import pytest

from edge_sfu.media import MediaSettings
from edge_sfu.stats import TrackCounters, track_stats
from tests.support.netns import slow_host
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(180)

CAP_BPS = 400_000

# Runs inside the namespace: the Python client publishing testsrc2 at 640x480, 30 fps in VP8,
# whose encoder (constant bitrate) sends what the SFU's REMB allows, from 250 kbit/s to
# 1.5 Mbit/s.
PUBLISHER = """
import asyncio, sys
from edge_sfu.client import connect
from tests.integration.media.peers import SyntheticVideoTrack

async def main() -> None:
    room = await connect(sys.argv[1], sys.argv[2], reconnect=False)
    await room.publish_track(SyntheticVideoTrack(640, 480, 30), "camera", codec="VP8")
    await asyncio.sleep(float(sys.argv[3]))
    await room.close()

asyncio.run(main())
"""


async def test_the_python_client_behind_a_capped_link_follows_its_uplink(tmp_path) -> None:
    with slow_host(CAP_BPS // 1000) as host:
        media = MediaSettings(host_addresses=(host.gateway,))
        async with running_sfu(tmp_path, host=host.gateway, media=media) as sfu:
            process = await host.python(PUBLISHER, sfu.ws_url, sfu.token("capped"), "40")
            try:

                def camera() -> TrackCounters | None:
                    tracks = [t for t in track_stats(sfu.app).tracks.values() if t.kind == "video"]
                    return tracks[0] if tracks and tracks[0].packets_received > 0 else None

                await wait_for(lambda: camera() is not None, timeout=30, what="the camera")
                await asyncio.sleep(10)  # the estimate settles
                first = camera()
                started = time.monotonic()
                await asyncio.sleep(10)
                last = camera()
                elapsed = time.monotonic() - started
            finally:
                if process.returncode is None:
                    process.terminate()
                await process.wait()
    assert first is not None and last is not None
    received = last.packets_received - first.packets_received
    lost = last.packets_lost - first.packets_lost
    bitrate = (last.bytes_received - first.bytes_received) * 8 / elapsed
    # it sends what its link carries, and its packets arrive (with the constant REMB of
    # 2.5 Mbit/s its encoder sent 1.5 Mbit/s and the queue dropped three packets in four)
    assert 50_000 < bitrate < CAP_BPS, bitrate
    assert lost <= 0.05 * (received + lost), (lost, received)
    estimate = last.available_incoming_bps
    assert estimate is not None and estimate < CAP_BPS * 1.25, estimate
