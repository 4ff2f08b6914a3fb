"""The field units a hub knows: who streams into its room now, who dropped and when, who
announced itself on the LAN without joining yet. A participant of the room counts as a field
unit once it publishes (the multi-view page's own viewers only receive).

``FieldUnits`` follows the room service's events for the hub's room (``hub.room``). A unit
whose connection dropped (the SFU saw it reconnecting before it left) is *reconnecting*
from then, and *offline* once ``offline_after`` seconds pass without it; a unit that left
by itself (a clean shutdown, a long press) is offline at once. Live figures (bitrate,
network quality, whether it is being recorded) are read when asked, from the SFU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_sfu.rooms import RoomService
from edge_sfu.rooms import events as ev


@dataclass
class FieldUnit:
    """One field unit as the hub last saw it."""

    identity: str
    state: str  # live | reconnecting | offline | discovered
    since: float
    participant_sid: str = ""
    dropped: bool = False  # the SFU saw its connection drop before it left
    address: str = ""  # where it announced itself (discovered units)


class FieldUnits:
    """The hub's field units by identity (see the module docstring)."""

    def __init__(
        self,
        rooms: RoomService,
        room: str,
        offline_after: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rooms = rooms
        self.room = room
        self._offline_after = offline_after
        self._clock = clock
        self.units: dict[str, FieldUnit] = {}
        self._unlisten: Callable[[], None] | None = None

    def start(self) -> None:
        """Follow the room service (and take in whoever is in the room already)."""
        self._unlisten = self._rooms.add_listener(self._on_event)
        live = self._rooms.live_room_by_name(self.room)
        if live is not None:
            for p in live.participants.values():
                if p.connected and p.published:
                    self._seen(p.identity, p.sid)

    def close(self) -> None:
        """Stop following the rooms."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    def _seen(self, identity: str, sid: str) -> None:
        now = self._clock()
        unit = self.units.get(identity)
        if unit is None or unit.state != "live":
            self.units[identity] = FieldUnit(identity, "live", now, sid)
        else:
            unit.participant_sid = sid

    def _on_event(self, event: ev.RoomEvent) -> None:
        room = getattr(event, "room", None)
        if room is None or room.unique_name != self.room:
            return
        match event:
            case ev.TrackPublished(participant=p):
                # A field unit publishes; viewers of the multi-view page only receive.
                self._seen(p.identity, p.sid)
            case ev.ParticipantReconnecting(participant=p):
                unit = self.units.get(p.identity)
                if unit is not None and unit.participant_sid == p.sid:
                    unit.dropped = True
            case ev.ParticipantDisconnected(participant=p, reason_code=code):
                unit = self.units.get(p.identity)
                if unit is None or unit.participant_sid != p.sid:
                    return  # an older connection of a unit that is back already
                # a duplicate identity is the unit itself coming back on a new connection
                lost = unit.dropped or code in (ev.ROOM_COMPLETED, ev.DUPLICATE_IDENTITY)
                state = "reconnecting" if lost else "offline"
                self.units[p.identity] = FieldUnit(p.identity, state, self._clock(), p.sid)
            case _:
                pass

    def discovered(self, identity: str, address: str) -> None:
        """A field unit announced itself on the LAN; listed until it joins."""
        if identity not in self.units or self.units[identity].state == "discovered":
            self.units[identity] = FieldUnit(identity, "discovered", self._clock(), address=address)

    def forget_discovered(self, identity: str) -> None:
        """The announcement was withdrawn (a unit that never joined)."""
        unit = self.units.get(identity)
        if unit is not None and unit.state == "discovered":
            del self.units[identity]

    def snapshot(self) -> list[FieldUnit]:
        """Every unit, its state brought up to date (reconnecting turns offline in time)."""
        now = self._clock()
        for unit in self.units.values():
            if unit.state == "reconnecting" and now - unit.since >= self._offline_after:
                unit.state = "offline"  # since stays: offline since the link dropped
        return sorted(self.units.values(), key=lambda u: u.identity)


def unit_view(
    unit: FieldUnit,
    *,
    rates: dict[str, float],
    quality: dict[str, int],
    recording: bool,
    rooms: RoomService,
) -> dict[str, Any]:
    """One unit as the multi-view page shows it."""
    tracks: list[dict[str, Any]] = []
    if unit.state == "live":
        participant = rooms.live_participant(unit.participant_sid)
        if participant is not None:
            tracks = [
                {"sid": t.sid, "kind": t.kind, "name": t.name}
                for t in participant.published.values()
            ]
    bitrate = sum(rates.get(t["sid"], 0.0) for t in tracks)
    return {
        "identity": unit.identity,
        "state": unit.state,
        "since": round(unit.since, 3),
        "participant_sid": unit.participant_sid if unit.state == "live" else "",
        "bitrate_kbps": round(bitrate, 1),
        "network_quality_level": quality.get(unit.participant_sid)
        if unit.state == "live"
        else None,
        "recording": recording and unit.state == "live",
        "tracks": tracks,
        "address": unit.address,
    }
