"""Audio levels read on the forwarding path from real aiortc publishers (RFC 6464 extension)."""

from __future__ import annotations

import time

from edge_sfu.media import Router
from tests.integration.media.peers import AudioStreamTrack, SyntheticVideoTrack, publish
from tests.support.media import ToneAudioTrack
from tests.support.waiting import wait_for


async def test_tone_speaks_silence_does_not_and_video_has_no_meter() -> None:
    router = Router("RMLV")
    tone_pc, _t1, tone = await publish(router, "PT", [(ToneAudioTrack(), "audio/opus")])
    quiet_pc, _t2, quiet = await publish(
        router, "PQ", [(AudioStreamTrack(), "audio/opus"), (SyntheticVideoTrack(), "video/VP8")]
    )
    try:
        tone_meter = tone[0].level
        silent = next(p for p in quiet if p.kind == "audio")
        video = next(p for p in quiet if p.kind == "video")
        assert tone_meter is not None and silent.level is not None
        assert video.level is None
        await wait_for(lambda: tone_meter.speaking_for(time.monotonic()) > 1.0, what="speech")
        await wait_for(lambda: silent.packets_received > 50, what="silent packets")
        now = time.monotonic()
        # aiortc's sender writes -dBov of each frame: the 8000/32768 sine is about -15 dBov
        assert 5 <= tone_meter.current_dbov(now) <= 25
        assert silent.level.current_dbov(now) == 127 and not silent.level.speaking(now)
    finally:
        await tone_pc.close()
        await quiet_pc.close()
        await router.close()
