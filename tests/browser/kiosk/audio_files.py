"""Tones in the files ALSA's file plugin reads and writes, and the frequency analysis."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from tests.support.alsa import ALSA_FILE_PCMS

RATE = 48_000


def tone(freq: float, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype("<i2")


def write_raw_tone(path: Path, freq: float, seconds: float) -> None:
    path.write_bytes(tone(freq, seconds).tobytes())


def write_wav_tone(path: Path, freq: float, seconds: float) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(tone(freq, seconds).tobytes())


def alsa_env(root: Path) -> dict[str, str]:
    """Environment pointing ALSA at the file PCMs (a new config file per test)."""
    conf = root / "asound.conf"
    conf.write_text(ALSA_FILE_PCMS)
    return {"ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{conf}"}


def kiosk_config(
    layers: list[dict[str, object]], mic: Path | str, speaker: Path
) -> dict[str, dict[str, object]]:
    """A kiosk daemon's config: the synthetic camera at 15 fps with ``layers``, the microphone
    reading the raw file ``mic`` (or the ALSA device named by a string), the speaker writing
    raw samples to ``speaker``."""
    capture = f"filecap:INFILE={mic}" if isinstance(mic, Path) else mic
    return {
        "camera": {"backend": "synthetic", "framerate": 15, "layers": layers},
        "audio": {
            "capture_device": capture,
            "playback_device": f"filesink:OUTFILE={speaker},FMT=raw",
        },
    }


def dominant_frequency(samples: np.ndarray) -> tuple[float, float]:
    """(peak frequency in Hz, RMS level) of S16 mono samples."""
    x = samples.astype(np.float64)
    rms = float(np.sqrt(np.mean(x**2))) if len(x) else 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    spectrum[freqs < 50] = 0
    return float(freqs[int(np.argmax(spectrum))]), rms


def loud_tail(path: Path, seconds: float = 1.0) -> np.ndarray:
    """The last ``seconds`` of the loudest part of a raw S16 mono file."""
    data = np.frombuffer(path.read_bytes(), dtype="<i2")
    n = int(RATE * seconds)
    if len(data) < n:
        return data
    # Skip silence the playback wrote before audio arrived: search back for a loud window.
    for end in range(len(data), n - 1, -n):
        window = data[end - n : end]
        if np.sqrt(np.mean(window.astype(np.float64) ** 2)) > 300:
            return window
    return data[-n:]
