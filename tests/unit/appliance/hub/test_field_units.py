"""The hub's registry of field units, driven by a real room service."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.hub.registry import FieldUnits, unit_view
from edge_sfu.rooms import RoomService
from edge_sfu.rooms import events as ev
from edge_sfu.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def rooms(tmp_path: Path):
    service = RoomService(Store.in_data_dir(tmp_path), sweep_interval=3600)
    yield service
    await service.close()


def states(units: FieldUnits) -> dict[str, tuple[str, float]]:
    return {u.identity: (u.state, u.since) for u in units.snapshot()}


async def test_publishers_are_units_and_viewers_are_not(rooms):
    clock = Clock()
    units = FieldUnits(rooms, "field", 60, clock=clock)
    units.start()
    cam = await rooms.connect("field-a", "field")
    await rooms.connect("wall", "field")  # the page: receives only
    other = await rooms.connect("someone", "elsewhere")
    await rooms.publish_track(other.sid, "video", "camera")
    assert states(units) == {}
    await rooms.publish_track(cam.sid, "video", "camera")
    await rooms.publish_track(cam.sid, "audio", "microphone")
    assert states(units) == {"field-a": ("live", 1000.0)}
    view = unit_view(
        units.snapshot()[0], rates={}, quality={cam.sid: 4}, recording=True, rooms=rooms
    )
    assert view["network_quality_level"] == 4 and view["recording"]
    assert {t["kind"] for t in view["tracks"]} == {"audio", "video"}


async def test_a_dropped_link_is_reconnecting_then_offline_a_clean_leave_offline_at_once(rooms):
    clock = Clock()
    units = FieldUnits(rooms, "field", 60, clock=clock)
    units.start()
    a = await rooms.connect("field-a", "field")
    b = await rooms.connect("field-b", "field")
    for p in (a, b):
        await rooms.publish_track(p.sid, "video", "camera")
    clock.now = 1010.0
    await rooms.set_reconnecting(a.sid)  # its connection dropped
    await rooms.disconnect(a.sid)
    await rooms.disconnect(b.sid)  # left by itself
    assert states(units) == {"field-a": ("reconnecting", 1010.0), "field-b": ("offline", 1010.0)}
    clock.now = 1069.0
    assert states(units)["field-a"] == ("reconnecting", 1010.0)
    clock.now = 1070.0
    assert states(units)["field-a"] == ("offline", 1010.0)  # offline since the drop
    clock.now = 1080.0
    again = await rooms.connect("field-a", "field")
    await rooms.publish_track(again.sid, "video", "camera")
    assert states(units)["field-a"] == ("live", 1080.0)


async def test_coming_back_on_a_new_connection_is_not_an_outage(rooms):
    units = FieldUnits(rooms, "field", 60)
    units.start()
    first = await rooms.connect("field-a", "field")
    await rooms.publish_track(first.sid, "video", "camera")
    seen: list[str] = []
    rooms.add_listener(
        lambda e: (
            seen.append(units.units["field-a"].state)
            if isinstance(e, ev.ParticipantDisconnected)
            else None
        )
    )
    second = await rooms.connect("field-a", "field")  # the old one goes with 53205
    assert seen == ["reconnecting"]
    await rooms.publish_track(second.sid, "video", "camera")
    assert units.units["field-a"].state == "live"


async def test_discovered_units_until_they_join(rooms):
    units = FieldUnits(rooms, "field", 60)
    units.start()
    units.discovered("field-c", "127.0.0.1")
    units.discovered("field-d", "127.0.0.1")
    units.forget_discovered("field-d")
    assert {u.identity: u.state for u in units.snapshot()} == {"field-c": "discovered"}
    c = await rooms.connect("field-c", "field")
    await rooms.publish_track(c.sid, "video", "camera")
    units.discovered("field-c", "127.0.0.1")  # its announcement again: still live
    assert units.units["field-c"].state == "live"
