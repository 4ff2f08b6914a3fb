"""A publisher's H.264/VP8/Opus reaches subscribers through the SFU, encoded."""

from __future__ import annotations

import pytest

from edge_sfu.media import Router
from tests.integration.media.peers import (
    AudioStreamTrack,
    Subscriber,
    SyntheticVideoTrack,
    publish,
    wait_for,
)


@pytest.mark.parametrize("mime", ["video/H264", "video/VP8"])
async def test_video_and_audio_reach_two_subscribers(mime: str) -> None:
    router = Router("RM1")
    pub_pc, _pub_t, producers = await publish(
        router, "PA", [(SyntheticVideoTrack(320, 240), mime), (AudioStreamTrack(), "audio/opus")]
    )
    subs = [Subscriber(router, f"PS{i}") for i in range(2)]
    try:
        for sub in subs:
            for producer in producers:
                router.consume(producer, sub.transport)
            await sub.negotiate()
        await wait_for(lambda: all(s.video_count() >= 10 for s in subs), what="video frames")
        await wait_for(lambda: all(s.audio_frames >= 20 for s in subs), what="audio frames")
        for sub in subs:
            sizes = {size for frames in sub.frames.values() for size in frames}
            assert sizes == {(320, 240)}
        video = next(p for p in producers if p.kind == "video")
        assert video.codec.mime_type.lower() == mime.lower()
        assert video.keyframe_requests_sent >= 1
    finally:
        for sub in subs:
            await sub.close()
        await pub_pc.close()
        await router.close()
