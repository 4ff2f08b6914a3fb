"""Level meters and the dominant-speaker rule, on synthetic level streams (one packet per 20 ms)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from edge_sfu.media.speech import HOLD_S, DominantSpeaker, LevelMeter

PACKET_S = 0.02
TICK_S = 0.1
LOUD = 25
QUIET = 45
SILENT = 127

#: A speaker's level at time t (seconds), or None when it sends nothing.
Script = Callable[[float], int | None]


def run(
    scripts: dict[str, Script], seconds: float, start: float = 0.0
) -> list[tuple[float, str | None]]:
    """Feed every speaker's packets and tick the detector; the changes, with their times."""
    meters = {name: LevelMeter() for name in scripts}
    detector = DominantSpeaker()
    changes: list[tuple[float, str | None]] = []
    steps = round(seconds / PACKET_S)
    for i in range(steps):
        now = start + i * PACKET_S
        for name, script in scripts.items():
            level = script(now)
            if level is not None:
                meters[name].add(level, now)
        if i % round(TICK_S / PACKET_S) == 0 and detector.update(meters, now):
            changes.append((now, detector.dominant))
    return changes


def speech(start: float, end: float, level: int = LOUD) -> Script:
    """Speech-like bursts (240 ms of voice, 60 ms pauses) between ``start`` and ``end``."""

    def script(t: float) -> int:
        return level if start <= t < end and (t - start) % 0.3 < 0.24 else SILENT

    return script


def blips(every: float, length: float, level: int = LOUD, start: float = 0.0) -> Script:
    def script(t: float) -> int:
        return level if t >= start and (t - start) % every < length else SILENT

    return script


def test_first_speaker_within_a_second() -> None:
    changes = run({"a": speech(1.0, 5.0), "b": speech(99, 99)}, 5.0)
    assert len(changes) == 1
    at, who = changes[0]
    assert who == "a" and 1.0 + HOLD_S - 0.01 <= at <= 2.0


def test_change_of_speaker_within_a_second_and_silence_keeps_the_last() -> None:
    changes = run({"a": speech(0.5, 4.0), "b": speech(4.0, 8.0)}, 12.0)
    assert [who for _, who in changes] == ["a", "b"]
    assert 4.0 < changes[1][0] <= 5.0  # and b stays dominant through 4 s of silence


def test_short_blips_never_flip_a_steady_speaker() -> None:
    # 20 s of one speaker; another coughs for 280 ms every 1.3 s, louder
    changes = run({"a": speech(0.0, 22.0, QUIET), "b": blips(1.3, 0.28, LOUD, 2.0)}, 22.0)
    assert [who for _, who in changes] == ["a"]


def test_blips_in_silence_do_not_take_over() -> None:
    changes = run({"a": speech(0.0, 3.0), "b": blips(1.0, 0.28, LOUD, 4.0)}, 20.0)
    assert [who for _, who in changes] == ["a"]


def test_overlap_louder_speaker_takes_over_quieter_does_not() -> None:
    quieter = run({"a": speech(0.0, 10.0, LOUD), "b": speech(3.0, 10.0, QUIET)}, 10.0)
    assert [who for _, who in quieter] == ["a"]
    louder = run({"a": speech(0.0, 10.0, QUIET), "b": speech(3.0, 10.0, LOUD)}, 10.0)
    assert [who for _, who in louder] == ["a", "b"]
    assert louder[1][0] <= 4.0


def test_speaker_leaving_gives_none_then_the_next() -> None:
    meters = {"a": LevelMeter(), "b": LevelMeter()}
    detector = DominantSpeaker()
    now = 0.0
    while now < 2.0:
        meters["a"].add(LOUD, now)
        now += PACKET_S
        detector.update(meters, now)
    assert detector.dominant == "a"
    del meters["a"]
    assert detector.update(meters, now) and detector.dominant is None
    assert not detector.update(meters, now)


def test_meter_levels_speaking_and_bad_values() -> None:
    meter = LevelMeter()
    assert not meter.speaking(0.0) and meter.current_dbov(0.0) == 127
    for bad in (-1, 128, 1000):
        meter.add(bad, 0.0)
    assert meter.current_dbov(0.0) == 127  # ignored
    t = 0.0
    while t < 1.0:
        meter.add(30, t)
        t += PACKET_S
    assert meter.speaking(t) and meter.current_dbov(t) == pytest.approx(30, abs=0.5)
    assert meter.speaking_for(t) == pytest.approx(1.0, abs=0.05)
    assert not meter.speaking(t + 0.3)
    assert meter.current_dbov(t + 2.0) == 127  # packets stopped: muted or gone


def test_a_local_source_sets_its_producer_level() -> None:
    from edge_sfu.media import OPUS, EncodedFrame, LocalProducer

    producer = LocalProducer(producer_id="MT1", participant_id="PA1", codec=OPUS)
    assert producer.level is not None
    for i in range(60):  # 1.2 s of speech from the kiosk's microphone
        producer.push(EncodedFrame(b"\x78opus", True, i * 20_000, audio_level=20))
    assert producer.level.speaking(time.monotonic())
    assert producer.level.current_dbov(time.monotonic()) == pytest.approx(20)
    producer.push(EncodedFrame(b"\x78opus", True, 60 * 20_000))  # level unknown: unchanged
    assert producer.level.current_dbov(time.monotonic()) == pytest.approx(20)
