"""Which camera layer a kiosk sends to another unit: the one its uplink carries.

In a room on another unit the kiosk publishes one H.264 stream (the Python client sends no
simulcast). The other unit's SFU says, in REMB, how much it may send: its estimate of the
kiosk's uplink, capped by what the kiosk's subscribers take. The kiosk sends the largest
layer that fits, as a browser's encoder drops to a smaller simulcast layer on a weak link.
It steps down at once and up only after the hint has covered the larger layer for a while,
so a hint that wavers around a layer's cost does not flip the picture back and forth.

A receiver's estimate cannot grow far past what arrives (REMB says at most 1.5 times it), so
on a small layer the hints never show room for a much larger one, even once the link has
recovered. As a browser's sender probes, the kiosk then tries the next larger layer when the
hints have held steady for a while: if the hint grows to cover it, it stays; if the hint
falls (the link is still short), stays flat (a fixed cap) or does not grow enough in time,
it steps back at once and waits twice as long before the next try.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

from hardware.camera.base import CameraLayerSpec

#: Seconds a hint must keep covering a larger layer before the kiosk steps up to it.
STEP_UP_HOLD_S: Final = 5.0
#: Bits per pixel per frame assumed for a layer with no configured bitrate (about what an
#: H.264 encoder needs for a clear moving picture at these sizes).
BITS_PER_PIXEL: Final = 0.05
#: Share of the hint a layer may use: headroom for audio, RTP overhead and the encoder's
#: own overshoot.
HEADROOM: Final = 0.85
#: Seconds of steady hints on a layer smaller than the largest before trying the next larger
#: one; doubled after each failed try, up to ``TRIAL_AFTER_MAX_S``.
TRIAL_AFTER_S: Final = 10.0
TRIAL_AFTER_MAX_S: Final = 80.0
#: Seconds a try has for the hint to cover the larger layer.
TRIAL_S: Final = 20.0
#: During a try, a hint below this share of the one it started from means the link is short.
TRIAL_FALL: Final = 0.8
#: A try whose hint has not grown by this share within ``TRIAL_GROW_S`` ends: the figure is
#: a fixed cap (a receiver's policy, or what the subscribers take), not an estimate that
#: follows what arrives.
TRIAL_GROW: Final = 1.05
TRIAL_GROW_S: Final = 4.0
#: A hint below this share of the one the steady spell started with ends the spell.
STEADY_FALL: Final = 0.95


def layer_cost(layer: CameraLayerSpec, framerate: float) -> int:
    """What ``layer`` needs (bit/s): its configured bitrate, else an estimate from its size."""
    if layer.bitrate:
        return layer.bitrate
    return max(50_000, int(layer.width * layer.height * framerate * BITS_PER_PIXEL))


class UplinkLayerChoice:
    """Follows bitrate hints; ``layer`` is the name of the layer to send now.

    ``layers`` as the camera lists them, largest first. Starts on the largest.
    """

    def __init__(
        self,
        layers: Sequence[CameraLayerSpec],
        framerate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not layers:
            raise ValueError("a camera has at least one layer")
        ordered = sorted(layers, key=lambda x: x.width * x.height, reverse=True)
        self._costs = [(x.name, layer_cost(x, framerate)) for x in ordered]
        self._clock = clock
        self.layer = ordered[0].name
        self.hint: int | None = None
        self._up_since: float | None = None
        # since when the hints have not fallen below the one then (a slow slide counts)
        self._steady_since: float | None = None
        self._steady_hint = 0
        self._trial_after = TRIAL_AFTER_S
        # a try of a larger layer: when it started and the hint then
        self._trial: tuple[float, int] | None = None

    def _fitting(self, bps: int) -> str:
        budget = bps * HEADROOM
        for name, cost in self._costs:
            if cost <= budget:
                return name
        return self._costs[-1][0]  # nothing fits: the smallest still moves

    def _rank(self, name: str) -> int:
        return next(i for i, (n, _) in enumerate(self._costs) if n == name)

    def on_hint(self, bps: int) -> str | None:
        """Take one hint; returns the layer to switch to, or None to stay."""
        if bps <= 0:
            return None  # a REMB of 0 is a receiver that has not measured yet
        self.hint = bps
        fitting = self._fitting(bps)
        now = self._clock()
        if self._steady_since is None or bps < self._steady_hint * STEADY_FALL:
            self._steady_since, self._steady_hint = now, bps
        if self._trial is not None:
            if self._rank(fitting) <= self._rank(self.layer):
                self._trial = None  # the hint covers the larger layer now: it stays
                self._trial_after = TRIAL_AFTER_S
            else:
                return self._trying(bps, fitting, now)
        if self._rank(fitting) > self._rank(self.layer):  # smaller: at once
            return self._switch(fitting, now)
        if fitting == self.layer:
            self._up_since = None
            return self._try_larger(bps, now)
        if self._up_since is None:
            self._up_since = now
            return None
        if now - self._up_since < STEP_UP_HOLD_S:
            return None
        return self._switch(fitting, now)

    def _switch(self, name: str, now: float) -> str:
        self._up_since = None
        self._steady_since, self._steady_hint = now, self.hint or 0
        self.layer = name
        return name

    def _trying(self, bps: int, fitting: str, now: float) -> str | None:
        started, start_hint = self._trial or (now, bps)
        fell = bps < start_hint * TRIAL_FALL
        flat = now - started >= TRIAL_GROW_S and bps < start_hint * TRIAL_GROW
        if not fell and not flat and now - started < TRIAL_S:
            return None  # the estimate grows from what arrives: give it time
        self._trial = None
        self._trial_after = min(self._trial_after * 2, TRIAL_AFTER_MAX_S)
        return self._switch(fitting, now)

    def _try_larger(self, bps: int, now: float) -> str | None:
        rank = self._rank(self.layer)
        steady = self._steady_since
        if rank == 0 or steady is None or now - steady < self._trial_after:
            return None
        if self._costs[rank][1] > bps * HEADROOM:
            return None  # not even this layer fits: nothing to try
        self._trial = (now, bps)
        return self._switch(self._costs[rank - 1][0], now)
