"""Twilio's VideoLayout grammar and the plan of who is drawn in which cell, when."""

from __future__ import annotations

import json

import pytest

from edge_sfu.errors import InvalidParameter
from edge_sfu.recording.layout import Span, parse_layout, parse_resolution, plan_video

CANVAS = (640, 480)


def region(**spec) -> dict:
    return parse_layout(json.dumps({"r": {"video_sources": ["*"], **spec}}), CANVAS)


def cells_at(plan, t: float) -> dict[str, tuple[int, int, int, int]]:
    return {p.key: (p.x, p.y, p.width, p.height) for p in plan if p.start <= t < p.end}


SPANS = [
    Span("a", "cam", "MTa", 0, 10),
    Span("b", "cam", "MTb", 2, 10),
    Span("c", "cam", "MTc", 4, 8),
]


def test_a_grid_grows_as_sources_come_and_shrinks_as_they_go() -> None:
    plan = plan_video(region(), SPANS)
    assert cells_at(plan, 1) == {"a": (0, 0, 640, 480)}
    assert cells_at(plan, 3) == {"a": (0, 0, 320, 480), "b": (320, 0, 320, 480)}
    assert cells_at(plan, 5) == {
        "a": (0, 0, 320, 240), "b": (320, 0, 320, 240), "c": (0, 240, 320, 240),
    }  # fmt: skip
    assert cells_at(plan, 9) == cells_at(plan, 3)


@pytest.mark.parametrize(
    ("reuse", "shown"),
    [("show_oldest", {"a", "b"}), ("show_newest", {"b", "c"}), ("none", {"a", "b"})],
)
def test_reuse_decides_who_is_shown_when_cells_run_out(reuse: str, shown: set[str]) -> None:
    plan = plan_video(region(max_columns=2, max_rows=1, reuse=reuse), SPANS)
    assert set(cells_at(plan, 5)) == shown


def test_reuse_none_gives_no_cell_to_a_latecomer_after_someone_left() -> None:
    spans = [
        Span("a", "cam", "MTa", 0, 3),
        Span("b", "cam", "MTb", 0, 10),
        Span("c", "cam", "MTc", 1, 10),
    ]
    none = plan_video(region(max_columns=2, max_rows=1, reuse="none"), spans)
    assert set(cells_at(none, 5)) == {"b"}
    oldest = plan_video(region(max_columns=2, max_rows=1, reuse="show_oldest"), spans)
    assert set(cells_at(oldest, 5)) == {"b", "c"}


def test_excluded_cells_stay_empty() -> None:
    plan = plan_video(region(max_columns=2, max_rows=2, cells_excluded=[0, 3]), SPANS[:2])
    assert cells_at(plan, 5) == {"a": (320, 0, 320, 240), "b": (0, 240, 320, 240)}


def test_sources_by_name_wildcard_or_sid_and_exclusions() -> None:
    spans = [Span("a", "screen", "MTa", 0, 5), Span("b", "cam-1", "MTb", 0, 5),
             Span("c", "cam-2", "MTc", 0, 5)]  # fmt: skip
    layout = parse_layout(
        json.dumps({"r": {"video_sources": ["cam*", "MTa"], "video_sources_excluded": ["cam-2"]}}),
        CANVAS,
    )
    assert set(cells_at(plan_video(layout, spans), 1)) == {"a", "b"}


@pytest.mark.parametrize(
    "layout",
    [
        "not json",
        "[]",
        "{}",
        json.dumps({"r": []}),
        json.dumps({"r": {"video_sources": "cam"}}),
        json.dumps({"r": {"video_sources": [3]}}),
        json.dumps({"r": {"x_pos": "0"}}),
        json.dumps({"r": {"x_pos": 640}}),
        json.dumps({"r": {"width": 641}}),
        json.dumps({"r": {"max_columns": 0}}),
        json.dumps({"r": {"max_rows": True}}),
        json.dumps({"r": {"max_columns": 100, "max_rows": 100}}),
        json.dumps({"r": {"cells_excluded": [0], "max_columns": 1, "max_rows": 1}}),
        json.dumps({"r": {"cells_excluded": [4], "max_columns": 2, "max_rows": 2}}),
        json.dumps({"r": {"reuse": "always"}}),
        json.dumps({"r": {"colour": "red"}}),
        json.dumps({f"r{i}": {} for i in range(17)}),
    ],
)
def test_malformed_layouts_are_refused(layout: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        parse_layout(layout, CANVAS)
    assert refused.value.code == 20001 and refused.value.status == 400


@pytest.mark.parametrize("value", ["640x480", "1280x720", "16x16", "1024x900"])
def test_resolutions_within_twilios_limits(value: str) -> None:
    width, height = parse_resolution(value)
    assert f"{width}x{height}" == value


@pytest.mark.parametrize(
    "value", ["1280x1280", "4096x2160", "8x8", "640*480", "x480", "640x", "641x480", "-640x480"]
)
def test_resolutions_outside_them_are_refused(value: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_resolution(value)
