"""Layers of a video publication, and which one a subscriber gets."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LayerSpec:
    """One encoding of a publication: a name (a simulcast ``rid``), its picture size and
    the most bit/s its publisher says it spends on it (None: not said).

    Audio and single-layer video use one layer named ``DEFAULT_LAYER`` with size 0x0.
    """

    name: str
    width: int = 0
    height: int = 0
    bitrate: int | None = None

    @property
    def pixels(self) -> int:
        """Picture area, used to order layers."""
        return self.width * self.height


DEFAULT_LAYER = "default"


def choose_layer(
    available: Iterable[LayerSpec],
    render_width: int | None,
    render_height: int | None,
) -> LayerSpec | None:
    """The layer for a subscriber who renders at ``render_width`` x ``render_height``.

    The smallest layer that covers the render size in both dimensions; when none does, the
    largest there is. No render size (``None``, or a 0 in either dimension: the protocol's
    0x0) means the best layer, as with Twilio and LiveKit: a subscriber that has not said how
    large it renders gets full quality, and one that shows a small tile says so (browsers do
    as soon as the tile is laid out). Layers of unknown size (0x0) count as large. Returns
    None when nothing is available.
    """
    layers = ordered_layers(available)
    if not layers:
        return None
    largest = max(layers, key=lambda s: (s.pixels == 0, s.pixels))
    if not render_width or not render_height:
        return largest
    for spec in layers:
        if spec.pixels == 0 or (spec.width >= render_width and spec.height >= render_height):
            return spec
    return largest


def ordered_layers(available: Iterable[LayerSpec]) -> list[LayerSpec]:
    """Layers from the smallest picture to the largest (unknown sizes, 0x0, count as largest)."""
    return sorted(available, key=lambda s: (s.pixels == 0, s.pixels, s.name))


def sending_layers(layers: Sequence[str], wanted: Collection[str]) -> list[str]:
    """Which of a simulcast source's ``layers`` (lowest first) it should send when
    ``wanted`` are received by someone: those, and the lowest too while any is wanted, so a
    subscriber that must step down finds it running; none when none is wanted."""
    if not any(name in wanted for name in layers):
        return []
    return [name for i, name in enumerate(layers) if i == 0 or name in wanted]
