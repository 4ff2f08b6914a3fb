"""Track bitrates on the status page: the SFU's typed counters, and rates between two polls."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from appliance.track_rates import TrackRates
from edge_sfu.context import SfuContext
from edge_sfu.identity import load_or_create_identity
from edge_sfu.keys import KeyStore
from edge_sfu.media import OPUS, EncodedFrame
from edge_sfu.server import create_sfu_app
from edge_sfu.signaling import SIGNALING
from edge_sfu.stats import LayerCounters, TrackCounters, TrackStats, track_stats


async def test_track_stats_counts_what_each_published_track_received(tmp_path: Path) -> None:
    identity = load_or_create_identity(tmp_path)
    context = SfuContext.open(tmp_path, identity, KeyStore(tmp_path, builtin=identity.signing_key))
    app = create_sfu_app(context)
    assert track_stats(app).tracks == {}  # before signaling runs
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        router = app[SIGNALING].router("RM-stats")
        mic = router.produce_local("PA", OPUS, producer_id="MT-mic")
        for i in range(3):
            mic.push(EncodedFrame(b"\x01" * 100, True, i * 20_000))
        stats = track_stats(app)
        assert stats.tracks == {
            "MT-mic": TrackCounters(
                bytes_received=300,
                packets_received=3,
                room_sid="RM-stats",
                kind="audio",
                layers={"default": LayerCounters(0, 0, 0)},  # audio: no frames counted
            )
        }
        mic.close()
        assert track_stats(app).tracks == {}
    finally:
        await runner.cleanup()


def test_rates_are_bits_per_second_between_polls_half_a_second_apart() -> None:
    snapshots = [
        TrackStats(10.0, {"MT1": TrackCounters(1000, 1)}),
        TrackStats(10.2, {"MT1": TrackCounters(5000, 5)}),  # too soon: the last rate again
        TrackStats(12.0, {"MT1": TrackCounters(26000, 26)}),
        TrackStats(12.1, {"MT1": TrackCounters(27000, 27), "MT2": TrackCounters(10, 1)}),
        TrackStats(13.0, {}),
    ]
    rates = TrackRates(lambda: snapshots.pop(0))
    assert rates.sample() == {"MT1": 0.0}  # a first poll has nothing to compare with
    assert rates.sample() == {"MT1": 0.0}
    assert rates.sample() == {"MT1": 100.0}  # 25000 bytes in 2 s
    assert rates.sample() == {"MT1": 100.0, "MT2": 0.0}
    assert rates.sample() == {}


def test_frame_rates_per_video_layer_between_polls() -> None:
    def video(frames_hi: int, frames_lo: int) -> TrackCounters:
        layers = {
            "hi": LayerCounters(640, 480, frames_hi),
            "lo": LayerCounters(160, 120, frames_lo),
        }
        return TrackCounters(0, 0, kind="video", layers=layers)

    snapshots = [
        TrackStats(10.0, {"MT1": video(100, 50), "MA1": TrackCounters(0, 0, kind="audio")}),
        TrackStats(12.0, {"MT1": video(160, 80)}),
        TrackStats(12.2, {"MT1": video(170, 80)}),  # too soon: the last rates again
        TrackStats(13.0, {}),
    ]
    rates = TrackRates(lambda: snapshots.pop(0))
    rates.sample()
    assert rates.frame_rates == {"MT1": {"hi": 0.0, "lo": 0.0}}  # audio has no frame rate
    rates.sample()
    assert rates.frame_rates == {"MT1": {"hi": 30.0, "lo": 15.0}}
    rates.sample()
    assert rates.frame_rates == {"MT1": {"hi": 30.0, "lo": 15.0}}
    rates.sample()
    assert rates.frame_rates == {}


def test_without_a_running_sfu_every_rate_is_absent() -> None:
    assert TrackRates().sample() == {}
