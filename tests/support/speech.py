"""Speech-like PCM: syllables with short pauses, and short blips (a cough, a word), for
microphones fed from files (Chromium's fake audio capture, the kiosk's ALSA file PCM)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RATE = 48000
#: A syllable: a vowel-like sound (a fundamental and five harmonics) under a raised-cosine
#: envelope, then a short pause; the pitch moves from one syllable to the next.
SYLLABLE_S = 0.18
PAUSE_S = 0.07
PITCHES = (140.0, 175.0, 160.0, 210.0, 185.0, 150.0)


def _syllable(seconds: float, f0: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 7))
    envelope = np.sin(np.pi * t / seconds) ** 0.5
    return amplitude * voice / 2.5 * envelope


def speech_samples(
    seconds: float,
    speech: Sequence[tuple[float, float]] = (),
    blips: Sequence[float] = (),
    *,
    blip_s: float = 0.25,
    amplitude: float = 0.5,
) -> np.ndarray:
    """Mono 48 kHz S16 samples of ``seconds``: silence, speech (syllables with short pauses)
    from each ``(start, end)`` of ``speech``, and one ``blip_s`` syllable at each time of
    ``blips``."""
    pcm = np.zeros(int(seconds * RATE))
    for start, end in speech:
        t, n = start, 0
        while t + SYLLABLE_S <= end:
            piece = _syllable(SYLLABLE_S, PITCHES[n % len(PITCHES)], amplitude)
            at = int(t * RATE)
            pcm[at : at + len(piece)] += piece
            t += SYLLABLE_S + PAUSE_S
            n += 1
    for at_s in blips:
        piece = _syllable(blip_s, PITCHES[0], amplitude)
        at = int(at_s * RATE)
        pcm[at : at + len(piece)] += piece
    return (np.clip(pcm, -1, 1) * 32767).astype("<i2")
