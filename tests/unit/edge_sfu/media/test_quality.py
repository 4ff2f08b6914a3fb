"""Network quality levels from link figures: each figure, both directions, bad figures."""

from __future__ import annotations

import math

import pytest

from edge_sfu.media.quality import LinkSample, link_jitter, link_levels, network_quality

GOOD = LinkSample(1_000_000, 900_000, 2_000_000, 0.0, 0.02, 0.005)


def test_nothing_asked_is_five() -> None:
    assert network_quality({}, {}).level == 5
    assert link_levels(LinkSample(0, available_bps=1)).level == 5


def test_unknown_figures_do_not_lower_the_level() -> None:
    assert link_levels(LinkSample(600_000)).level == 5


def test_good_link() -> None:
    quality = network_quality({"video": GOOD}, {"audio": LinkSample(32_000, None, 3_000_000)})
    assert quality.level == 5 and quality.send.level == 5 and quality.recv.level == 5


@pytest.mark.parametrize(
    ("sample", "level"),
    [
        (LinkSample(1_000_000, available_bps=650_000), 4),
        (LinkSample(1_000_000, available_bps=400_000), 3),
        (LinkSample(1_000_000, available_bps=250_000), 2),
        (LinkSample(1_000_000, available_bps=100_000), 1),
        (LinkSample(1_000_000, loss=0.04), 4),
        (LinkSample(1_000_000, loss=0.15), 2),
        (LinkSample(1_000_000, loss=0.5), 1),
        (LinkSample(1_000_000, rtt_s=0.7), 3),
        (LinkSample(1_000_000, rtt_s=3.0), 1),
        (LinkSample(1_000_000, jitter_s=0.2), 2),
        (LinkSample(1_000_000, jitter_s=0.045), 5),
    ],
)
def test_each_figure_scores(sample: LinkSample, level: int) -> None:
    assert link_levels(sample).level == level


def test_capped_uplink_against_a_camera() -> None:
    # a camera wanting 600 kbit/s behind a 400 kbit/s cap, queueing delay and some loss
    capped = LinkSample(632_000, 350_000, 350_000, 0.06, 0.2, 0.02)
    assert network_quality({"video": capped}, {}).level == 3
    worse = LinkSample(632_000, 200_000, 200_000, 0.12, 0.9, 0.05)
    assert network_quality({"video": worse}, {}).level <= 2


def test_the_worse_direction_counts_and_disconnected_is_zero() -> None:
    bad_down = LinkSample(2_000_000, None, 500_000, 0.1, 0.1, 0.01)
    quality = network_quality({"video": GOOD}, {"video": bad_down})
    assert quality.send.level == 5 and quality.recv.level == 2 and quality.level == 2
    assert network_quality({"video": GOOD}, {}, connected=False).level == 0


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_out_of_range_figures_are_ignored(bad: float) -> None:
    assert link_levels(LinkSample(1_000_000, loss=bad, rtt_s=bad, jitter_s=bad)).level == 5


def test_reports_by_verbosity() -> None:
    quality = network_quality({"audio": LinkSample(32_000, 30_000, 40_000)}, {})
    assert quality.report(0) is None
    assert quality.report(1) == {"level": 5}
    assert quality.report(2) == {"level": 5, "send": 5, "recv": 5}
    detailed = quality.report(3)
    assert detailed is not None
    assert detailed["audio"] == {"send": 5, "recv": 5} and detailed["video"] == {
        "send": 5,
        "recv": 5,
    }
    assert detailed["send_stats"]["bandwidth"]["wanted"] == 32_000  # type: ignore[index]


def test_a_links_jitter_is_its_audios_where_audio_reports() -> None:
    # video's jitter also counts how each frame's burst of packets was spread on its way
    assert link_jitter([("video", 0.07), ("audio", 0.004), ("audio", 0.009)]) == 0.009
    assert link_jitter([("video", 0.07), ("video", 0.03), ("audio", None)]) == 0.07
    assert link_jitter([("video", None), ("audio", -1.0)]) is None
    assert link_jitter([]) is None
