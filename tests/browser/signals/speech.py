"""Speech-like WAVs for Chromium's fake microphone, and what the pages say about them."""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

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


def write_wav(
    path: Path,
    seconds: float,
    speech: Sequence[tuple[float, float]] = (),
    blips: Sequence[float] = (),
    *,
    blip_s: float = 0.25,
    amplitude: float = 0.5,
) -> Path:
    """A mono 48 kHz WAV of ``seconds``: silence, speech (syllables with short pauses) from
    each ``(start, end)`` of ``speech``, and one ``blip_s`` syllable at each time of ``blips``."""
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
    samples = (np.clip(pcm, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    return path


#: Installed in each page once it joined: its own microphone level from getStats (the
#: truth of when it speaks) every 50 ms, each dominantSpeakerChanged, and the names on the
#: tiles that show a speaking indicator every 200 ms, on one clock.
RECORD_JS = """() => {
  const room = window.edgeRoom;
  window.speech = {levels: [], changes: [], talking: []};
  room.on('dominantSpeakerChanged',
    (p) => window.speech.changes.push([Date.now(), p ? p.identity : null]));
  setInterval(async () => {
    const stats = await room._pc.getStats();
    for (const s of stats.values()) {
      if (s.type !== 'media-source' || s.kind !== 'audio') continue;
      window.speech.levels.push([Date.now(), s.audioLevel || 0]);
    }
  }, 50);
  setInterval(() => window.speech.talking.push([Date.now(),
    [...document.querySelectorAll('.tile.talking .name')].map((e) => e.textContent)]), 200);
}"""


def stretches(
    levels: Sequence[tuple[float, float]], threshold: float, bridge_s: float = 0.3
) -> list[tuple[float, float]]:
    """The stretches of speech in ``(ms, level)`` samples: (start, end) in seconds, pauses
    shorter than ``bridge_s`` bridged."""
    out: list[list[float]] = []
    for ms, level in levels:
        t = ms / 1000
        if level < threshold:
            continue
        if out and t - out[-1][1] <= bridge_s:
            out[-1][1] = t
        else:
            out.append([t, t])
    return [(a, b) for a, b in out]
