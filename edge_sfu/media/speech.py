"""Who is speaking: per-track audio levels and a room's dominant speaker, from RFC 6464 levels.

The SFU never decodes audio to forward it; publishers put each packet's level in its RTP
header (``urn:ietf:params:rtp-hdrext:ssrc-audio-level``, in -dBov: 0 loudest, 127
silence) and the forwarding path hands it to the producer's ``LevelMeter`` (a few
arithmetic operations per audio packet). ``DominantSpeaker`` runs on a timer, not per
packet, and reads the meters.

The rule is a smoothed level with a hold rather than mediasoup's Volfin-Cohen observer:
a participant takes over once it has spoken for ``hold_s`` without a pause longer than
``HANGOVER_S``, if the current speaker is silent or quieter by ``margin_db``. A cough or a
blip (speaking shorter than ``hold_s - HANGOVER_S``) never reaches the hold; silence keeps
the last speaker. A change is announced ``hold_s`` after the new speaker starts, plus at
most one tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

#: A packet at or above this loudness (at or below this many -dBov) counts as speech.
#: Ambient room noise through a browser's noise suppression sits around -60 dBov; speech
#: at a normal distance from a laptop microphone at -40 to -20 dBov.
SPEECH_DBOV: Final = 50
#: Pauses shorter than this do not end a stretch of speech (the gaps between words).
HANGOVER_S: Final = 0.25
#: Time constant of the smoothed level.
SMOOTHING_S: Final = 0.3
#: How long a participant must have been speaking to take over.
HOLD_S: Final = 0.7
#: How much louder (dB) a participant must be to take over from one still speaking.
MARGIN_DB: Final = 6.0
SILENCE_DBOV: Final = 127


class LevelMeter:
    """The recent audio level of one audio track, fed one RFC 6464 level per packet."""

    __slots__ = ("_last_sample", "_last_voiced", "_voiced_since", "level_dbov")

    def __init__(self) -> None:
        #: Smoothed level in -dBov (127: silence, or nothing received yet).
        self.level_dbov = float(SILENCE_DBOV)
        self._last_sample: float | None = None
        self._last_voiced: float | None = None
        self._voiced_since = 0.0

    def add(self, level: int, now: float) -> None:
        """One packet's level (-dBov, 0 to 127) at ``now`` (monotonic seconds).

        Out-of-range values are ignored: the forwarding path never checks them first.
        """
        if not 0 <= level <= SILENCE_DBOV:
            return
        last = self._last_sample
        if last is None or now - last > SMOOTHING_S * 4:
            self.level_dbov = float(level)
        elif now > last:
            dt = now - last
            self.level_dbov += (level - self.level_dbov) * dt / (SMOOTHING_S + dt)
        self._last_sample = now
        if level <= SPEECH_DBOV:
            voiced = self._last_voiced
            if voiced is None or now - voiced > HANGOVER_S:
                self._voiced_since = now
            self._last_voiced = now

    def current_dbov(self, now: float) -> float:
        """The smoothed level, or silence once packets stopped (muted, or gone)."""
        last = self._last_sample
        if last is None or now - last > SMOOTHING_S * 4:
            return float(SILENCE_DBOV)
        return self.level_dbov

    def speaking(self, now: float) -> bool:
        """Whether the track carried speech within the last ``HANGOVER_S``."""
        voiced = self._last_voiced
        return voiced is not None and now - voiced <= HANGOVER_S

    def speaking_for(self, now: float) -> float:
        """How long the current stretch of speech has lasted (0 when not speaking)."""
        if not self.speaking(now):
            return 0.0
        return now - self._voiced_since


class DominantSpeaker:
    """A room's dominant speaker, with hysteresis; ``update`` on a timer (every 100 ms or so).

    Keys are whatever the caller names speakers by (participant sids).
    """

    def __init__(self, *, hold_s: float = HOLD_S, margin_db: float = MARGIN_DB) -> None:
        self.hold_s = hold_s
        self.margin_db = margin_db
        #: The current dominant speaker, or None (nobody has spoken yet, or they left).
        self.dominant: str | None = None

    def update(self, meters: Mapping[str, LevelMeter], now: float) -> bool:
        """Look at every speaker's meter; returns whether ``dominant`` changed."""
        current = meters.get(self.dominant) if self.dominant is not None else None
        best: str | None = None
        best_db = float(SILENCE_DBOV) + 1
        for key, meter in meters.items():
            if key == self.dominant or meter.speaking_for(now) < self.hold_s:
                continue
            level = meter.current_dbov(now)
            if level < best_db:
                best, best_db = key, level
        if best is not None and (
            current is None
            or not current.speaking(now)
            or best_db + self.margin_db <= current.current_dbov(now)
        ):
            self.dominant = best
            return True
        if current is None and self.dominant is not None:
            self.dominant = None  # the speaker left, and nobody is speaking now
            return True
        return False
