"""The kiosk's audio mixer: its mixing task lives from ``start`` to ``close``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import av
import numpy as np
import pytest

from appliance.kiosk.mixer import RATE, AudioMixer


def _tone(samples: int = RATE // 10) -> av.AudioFrame:
    pcm = (np.sin(np.arange(samples) / 10) * 8000).astype("<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = RATE
    return frame


async def _until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def test_mixing_runs_from_start_until_close() -> None:
    written: list[bytes] = []
    mixer = AudioMixer(written.append, period_ms=10)
    mixer.add_frame("a", _tone())
    mixer.start()
    mixer.start()  # a second start does not start a second mixing task
    await _until(lambda: len(written) >= 3)
    await mixer.close()
    mixed = mixer.periods_mixed
    assert all(len(chunk) == 2 * RATE // 100 for chunk in written)
    await asyncio.sleep(0.05)
    assert mixer.periods_mixed == mixed and mixer.levels() == {}


async def test_a_failing_speaker_is_logged_and_close_still_completes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_: bytes) -> None:
        raise OSError("speaker gone")

    mixer = AudioMixer(broken, period_ms=10)
    mixer.add_frame("a", _tone())
    with caplog.at_level(logging.ERROR):
        mixer.start()
        await _until(lambda: "speaker gone" in caplog.text)
        await mixer.close()  # the task's failure does not come out of close
    assert "audio-mixer" in caplog.text and mixer.levels() == {}
