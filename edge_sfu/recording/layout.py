"""Twilio's composition grammar: ``VideoLayout`` regions, sources, resolution; and the plan.

A layout is a JSON object of named regions. Each region has a position and size on the
canvas (``x_pos``, ``y_pos``, ``z_pos``, ``width``, ``height``; the whole canvas by default),
the sources it shows (``video_sources``, ``video_sources_excluded``: track names with ``*``
wildcards, or track SIDs), and how they share it: a grid of at most ``max_columns`` x
``max_rows`` cells, minus ``cells_excluded`` (cell numbers, row by row from 0), filled in
order of appearance. ``reuse`` says what happens when more sources are live than cells:
``none`` (a source shows only in a cell it got when it appeared; later ones wait for
nothing), ``show_oldest`` (the earliest live ones) or ``show_newest`` (the latest ones).

``plan_video`` turns a layout and the recordings' time spans into intervals, each with the
cell every shown source occupies; the composer draws them with FFmpeg.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidParameter

MAX_REGIONS = 16
MAX_SOURCES = 64
MAX_NAME = 128
MAX_CELLS = 1000
REUSE = ("none", "show_oldest", "show_newest")
#: Twilio's limits: each side 16 to 1280 pixels, at most 921,600 pixels.
MIN_SIDE, MAX_SIDE, MAX_PIXELS = 16, 1280, 921_600
DEFAULT_RESOLUTION = "640x480"
_REGION_KEYS = {
    "x_pos", "y_pos", "z_pos", "width", "height", "max_columns", "max_rows",
    "cells_excluded", "reuse", "video_sources", "video_sources_excluded",
}  # fmt: skip


def parse_resolution(value: str) -> tuple[int, int]:
    """``{width}x{height}`` within Twilio's limits."""
    width_text, sep, height_text = value.partition("x")
    if not sep or not width_text.isdigit() or not height_text.isdigit() or len(value) > 11:
        raise InvalidParameter("Resolution must be {width}x{height}, such as 1280x720")
    width, height = int(width_text), int(height_text)
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise InvalidParameter(f"Resolution sides must be {MIN_SIDE} to {MAX_SIDE} pixels")
    if width * height > MAX_PIXELS:
        raise InvalidParameter(f"Resolution must be at most {MAX_PIXELS} pixels")
    if width % 2 or height % 2:
        raise InvalidParameter("Resolution sides must be even numbers of pixels")
    return width, height


def _int(region: str, key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameter(
            f"VideoLayout region {region!r}: {key} must be an integer from {low} to {high}"
        )
    return value


def _names(region: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_SOURCES:
        raise InvalidParameter(f"VideoLayout region {region!r}: {key} must be a list of names")
    for name in value:
        if not isinstance(name, str) or not name or len(name) > MAX_NAME:
            raise InvalidParameter(
                f"VideoLayout region {region!r}: {key} holds track names or SIDs (strings)"
            )
    return list(value)


def parse_sources(values: list[str], field: str) -> list[str]:
    """``AudioSources`` / ``AudioSourcesExcluded``: track names, wildcards or SIDs."""
    if len(values) > MAX_SOURCES:
        raise InvalidParameter(f"{field} takes at most {MAX_SOURCES} sources")
    for name in values:
        if not name or len(name) > MAX_NAME:
            raise InvalidParameter(f"{field} holds track names (1 to {MAX_NAME} characters)")
    return values


def parse_layout(raw: str, resolution: tuple[int, int]) -> dict[str, dict[str, Any]]:
    """Validate a ``VideoLayout`` JSON document against the canvas; the regions, completed
    with their defaults."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidParameter("VideoLayout must be a JSON object of regions") from exc
    if not isinstance(value, dict) or not 1 <= len(value) <= MAX_REGIONS:
        raise InvalidParameter(f"VideoLayout must be a JSON object of 1 to {MAX_REGIONS} regions")
    width, height = resolution
    regions: dict[str, dict[str, Any]] = {}
    for name, spec in value.items():
        if not name or len(name) > MAX_NAME or not isinstance(spec, dict):
            raise InvalidParameter("each VideoLayout region is a named JSON object")
        unknown = set(spec) - _REGION_KEYS
        if unknown:
            raise InvalidParameter(
                f"VideoLayout region {name!r}: unknown key(s) {', '.join(sorted(unknown))}"
            )
        x = _int(name, "x_pos", spec.get("x_pos", 0), 0, width - 1)
        y = _int(name, "y_pos", spec.get("y_pos", 0), 0, height - 1)
        region = {
            "x_pos": x,
            "y_pos": y,
            "z_pos": _int(name, "z_pos", spec.get("z_pos", 0), -99, 99),
            "width": _int(name, "width", spec.get("width", width - x), 16, width - x),
            "height": _int(name, "height", spec.get("height", height - y), 16, height - y),
            "max_columns": _int(name, "max_columns", spec.get("max_columns", 16), 1, MAX_CELLS),
            "max_rows": _int(name, "max_rows", spec.get("max_rows", 16), 1, MAX_CELLS),
            "reuse": spec.get("reuse", "show_oldest"),
            "video_sources": _names(name, "video_sources", spec.get("video_sources", [])),
            "video_sources_excluded": _names(
                name, "video_sources_excluded", spec.get("video_sources_excluded", [])
            ),
        }
        if region["reuse"] not in REUSE:
            raise InvalidParameter(
                f"VideoLayout region {name!r}: reuse must be one of {', '.join(REUSE)}"
            )
        cells = region["max_columns"] * region["max_rows"]
        if cells > MAX_CELLS:
            raise InvalidParameter(f"VideoLayout region {name!r}: at most {MAX_CELLS} cells")
        excluded = spec.get("cells_excluded", [])
        if not isinstance(excluded, list) or len(excluded) > MAX_CELLS:
            raise InvalidParameter(f"VideoLayout region {name!r}: cells_excluded is a list")
        region["cells_excluded"] = sorted(
            {_int(name, "cells_excluded", c, 0, cells - 1) for c in excluded}
        )
        if len(region["cells_excluded"]) >= cells:
            raise InvalidParameter(f"VideoLayout region {name!r}: every cell is excluded")
        regions[name] = region
    return regions


def matches(patterns: list[str], name: str, sid: str) -> bool:
    """Whether a track (by name or SID) is one of ``patterns`` (``*`` is a wildcard)."""
    return any(p == sid or fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass(frozen=True)
class Span:
    """When a source has media on the composition's timeline (seconds)."""

    key: str  # the recording's SID
    name: str
    source_sid: str
    start: float
    end: float


@dataclass(frozen=True)
class Placement:
    """One source drawn in one cell from ``start`` to ``end`` (seconds)."""

    key: str
    start: float
    end: float
    x: int
    y: int
    width: int
    height: int
    z: int


def _grid(count: int, region: dict[str, Any]) -> tuple[int, int, list[int]]:
    """The smallest grid (columns, rows) within the region's limits holding ``count``
    sources beside its excluded cells; the usable cell numbers in order."""
    max_c, max_r = region["max_columns"], region["max_rows"]
    excluded = set(region["cells_excluded"])
    best: tuple[int, int] | None = None
    best_score: tuple[int, int, int] | None = None
    for cols in range(1, max_c + 1):
        rows = min(max_r, max(1, math.ceil(count / cols)))
        while rows < max_r and _usable(cols, rows, excluded) < count:
            rows += 1
        if _usable(cols, rows, excluded) >= count:
            # square-ish grids first, then fewer empty cells, then cells like the region
            wide = region["width"] >= region["height"]
            score = (max(cols, rows), cols * rows, -cols if wide else -rows)
            if best_score is None or score < best_score:
                best, best_score = (cols, rows), score
    if best is None:
        best = (max_c, max_r)
    cols, rows = best
    # cells are numbered row by row in the grid drawn, from 0
    return cols, rows, [c for c in range(cols * rows) if c not in excluded]


def _usable(cols: int, rows: int, excluded: set[int]) -> int:
    return sum(1 for c in range(cols * rows) if c not in excluded)


def capacity(region: dict[str, Any]) -> int:
    """How many sources a region can show at once."""
    cells: int = region["max_columns"] * region["max_rows"]
    return cells - len(region["cells_excluded"])


def plan_video(regions: dict[str, dict[str, Any]], spans: list[Span]) -> list[Placement]:
    """Where each source is drawn, interval by interval (sources appear in start order)."""
    cuts = sorted({s.start for s in spans} | {s.end for s in spans})
    placements: list[Placement] = []
    for region in regions.values():
        mine = [
            s
            for s in spans
            if matches(region["video_sources"], s.name, s.source_sid)
            and not matches(region["video_sources_excluded"], s.name, s.source_sid)
        ]
        mine.sort(key=lambda s: (s.start, s.key))
        room = capacity(region)
        admitted: list[str] = []  # reuse "none": the first ones to appear, for good
        for a, b in itertools.pairwise(cuts):
            live = [s for s in mine if s.start <= a and s.end >= b]
            if region["reuse"] == "none":
                for s in live:
                    if s.key not in admitted and len(admitted) < room:
                        admitted.append(s.key)
                shown = [s for s in live if s.key in admitted]
            elif region["reuse"] == "show_newest":
                shown = live[-room:]
            else:
                shown = live[:room]
            placements.extend(_place(region, shown, a, b))
    return _merge(placements)


def _place(region: dict[str, Any], shown: list[Span], a: float, b: float) -> list[Placement]:
    if not shown:
        return []
    cols, rows, usable = _grid(len(shown), region)
    cell_w, cell_h = region["width"] // cols, region["height"] // rows
    out = []
    for span, cell in zip(shown, usable, strict=False):
        col, row = cell % cols, cell // cols
        out.append(
            Placement(
                span.key,
                a,
                b,
                region["x_pos"] + col * cell_w,
                region["y_pos"] + row * cell_h,
                cell_w - cell_w % 2,
                cell_h - cell_h % 2,
                region["z_pos"],
            )
        )
    return out


def _merge(placements: list[Placement]) -> list[Placement]:
    """Join consecutive intervals where a source keeps the same cell."""
    merged: list[Placement] = []
    for p in sorted(placements, key=lambda p: (p.key, p.x, p.y, p.width, p.height, p.start)):
        last = merged[-1] if merged else None
        same = last is not None and (last.key, last.x, last.y, last.width, last.height) == (
            p.key, p.x, p.y, p.width, p.height
        )  # fmt: skip
        if last is not None and same and abs(last.end - p.start) < 1e-6:
            merged[-1] = Placement(p.key, last.start, p.end, p.x, p.y, p.width, p.height, p.z)
        else:
            merged.append(p)
    return sorted(merged, key=lambda p: (p.z, p.start, p.key))
