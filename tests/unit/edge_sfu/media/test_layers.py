"""Which layer a subscriber gets for the render size it asked for (or did not ask for)."""

from __future__ import annotations

from edge_sfu.media import DEFAULT_LAYER, LayerSpec, choose_layer

MAIN = LayerSpec("main", 1280, 720)
MID = LayerSpec("mid", 640, 360)
LORES = LayerSpec("lores", 320, 180)
LAYERS = [LORES, MAIN, MID]


def test_no_render_size_gets_the_best_layer() -> None:
    assert choose_layer(LAYERS, None, None) == MAIN


def test_zero_by_zero_gets_the_best_layer() -> None:
    assert choose_layer(LAYERS, 0, 0) == MAIN
    assert choose_layer(LAYERS, 0, 360) == MAIN  # a zero in either dimension: no size


def test_smallest_layer_covering_the_render_size() -> None:
    assert choose_layer(LAYERS, 320, 180) == LORES
    assert choose_layer(LAYERS, 321, 100) == MID
    assert choose_layer(LAYERS, 640, 360) == MID
    assert choose_layer(LAYERS, 1000, 200) == MAIN


def test_larger_than_every_layer_gets_the_largest() -> None:
    assert choose_layer(LAYERS, 3840, 2160) == MAIN


def test_layers_of_unknown_size_count_as_large() -> None:
    unknown = LayerSpec(DEFAULT_LAYER)
    assert choose_layer([LORES, unknown], None, None) == unknown
    assert choose_layer([LORES, unknown], 640, 360) == unknown
    assert choose_layer([LORES, unknown], 320, 180) == LORES
    assert choose_layer([], None, None) is None
