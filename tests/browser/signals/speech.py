"""Speech-like WAVs for Chromium's fake microphone, and what the pages say about them."""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

from tests.support.speech import RATE, speech_samples


def write_wav(
    path: Path,
    seconds: float,
    speech: Sequence[tuple[float, float]] = (),
    blips: Sequence[float] = (),
    *,
    blip_s: float = 0.25,
    amplitude: float = 0.5,
) -> Path:
    """A mono 48 kHz WAV of ``speech_samples``."""
    samples = speech_samples(seconds, speech, blips, blip_s=blip_s, amplitude=amplitude)
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
