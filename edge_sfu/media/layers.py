"""Layers of a video publication, and which one a subscriber gets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class LayerSpec:
    """One encoding of a publication: a name (a simulcast ``rid``) and its picture size.

    Audio and single-layer video use one layer named ``DEFAULT_LAYER`` with size 0x0.
    """

    name: str
    width: int = 0
    height: int = 0

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
    largest there is. No render size yet (``None``) means the smallest layer: a subscriber
    states how large it renders a video (browsers do as soon as a tile is shown), and until
    then a Pi camera should not spend its encoder on a picture nobody has asked to see large.
    Layers of unknown size (0x0) count as large. Returns None when nothing is available.
    """
    layers = sorted(available, key=lambda s: (s.pixels == 0, s.pixels, s.name))
    if not layers:
        return None
    largest = max(layers, key=lambda s: (s.pixels == 0, s.pixels))
    if render_width is None or render_height is None:
        return layers[0]
    for spec in layers:
        if spec.pixels == 0 or (spec.width >= render_width and spec.height >= render_height):
            return spec
    return largest
