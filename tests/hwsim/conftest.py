"""Fixtures for hardware-simulated tests: ALSA file PCMs, gpiozero MockFactory, event waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ALSA_FILE_PCMS = """
pcm.filecap {
    @args [ INFILE ]
    @args.INFILE { type string default "/dev/zero" }
    type file
    slave.pcm "null"
    file "/dev/null"
    infile $INFILE
    format "raw"
}
pcm.filesink {
    @args [ OUTFILE FMT ]
    @args.OUTFILE { type string default "/dev/null" }
    @args.FMT { type string default "raw" }
    type file
    slave.pcm "null"
    file $OUTFILE
    format $FMT
}
"""


@pytest.fixture
def alsa_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ALSA config (new file per test: ALSA ignores same-second edits) with file PCMs."""
    conf = tmp_path / f"alsa-{time.monotonic_ns()}.conf"
    conf.write_text(ALSA_FILE_PCMS)
    monkeypatch.setenv("ALSA_CONFIG_PATH", f"/usr/share/alsa/alsa.conf:{conf}")
    return tmp_path


@pytest.fixture
def mock_factory() -> Iterator[Any]:
    """gpiozero's MockFactory with PWM pins, reset and closed after the test."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    factory = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = factory
    yield factory
    factory.reset()
    factory.close()
    Device.pin_factory = None


class Events:
    """A thread-safe event list with bounded waiting."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def of(self, kind: type, **attrs: Any) -> list[Any]:
        with self._cond:
            return [
                e
                for e in self.items
                if isinstance(e, kind) and all(getattr(e, k) == v for k, v in attrs.items())
            ]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"condition not met within {timeout}s")
                self._cond.wait(min(left, 0.1))

    def wait_count(self, kind: type, n: int, timeout: float = 20.0, **attrs: Any) -> list[Any]:
        self.wait_for(lambda: len(self.of(kind, **attrs)) >= n, timeout)
        return self.of(kind, **attrs)


@pytest.fixture
def events() -> Events:
    return Events()


def decode_h264(units: list[bytes]) -> list[Any]:
    """Decode Annex B access units with FFmpeg's H.264 decoder; return the frames."""
    import av

    dec = av.CodecContext.create("h264", "r")
    frames = []
    for data in units:
        frames += dec.decode(av.Packet(data))
    frames += dec.decode(None)
    return frames
