"""Which camera layer a kiosk sends to another unit: the one its uplink carries.

In a room on another unit the kiosk publishes one H.264 stream (the Python client sends no
simulcast). The other unit's SFU says, in REMB, how much it may send: its estimate of the
kiosk's uplink, capped by what the kiosk's subscribers take. The kiosk sends the largest
layer that fits, as a browser's encoder drops to a smaller simulcast layer on a weak link.
It steps down at once and up only after the hint has covered the larger layer for a while,
so a hint that wavers around a layer's cost does not flip the picture back and forth.
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
        if self._rank(fitting) > self._rank(self.layer):  # smaller: at once
            self._up_since = None
            self.layer = fitting
            return fitting
        if fitting == self.layer:
            self._up_since = None
            return None
        if self._up_since is None:
            self._up_since = now
            return None
        if now - self._up_since < STEP_UP_HOLD_S:
            return None
        self._up_since = None
        self.layer = fitting
        return fitting
