"""Fixtures for hardware-simulated tests: ALSA file PCMs, gpiozero MockFactory, event waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.alsa import ALSA_FILE_PCMS
from tests.support.waiting import wait_for_sync


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
        self._lock = threading.Lock()

    def __call__(self, item: Any) -> None:
        with self._lock:
            self.items.append(item)

    def of(self, kind: type, **attrs: Any) -> list[Any]:
        with self._lock:
            return [
                e
                for e in self.items
                if isinstance(e, kind) and all(getattr(e, k) == v for k, v in attrs.items())
            ]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        wait_for_sync(predicate, timeout=timeout, what="the expected events", interval=0.02)

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
