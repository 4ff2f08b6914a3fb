"""The room model of the SFU: live rooms, participants, tracks, rules and their events.

``RoomService`` (in ``service``) is the entry point; ``events`` lists what it announces,
``rules`` holds the Subscribe/Recording Rules grammar and ``rules_allow``.
"""

from __future__ import annotations

from . import events
from .events import Listener, RoomEvent
from .model import (
    Participant,
    PublishedTrack,
    Room,
    RoomDefaults,
    RoomSettings,
    SubscribedTrack,
)
from .rules import parse_recording_rules, parse_subscribe_rules, rules_allow
from .service import RoomService, validate_room_name

__all__ = [
    "Listener",
    "Participant",
    "PublishedTrack",
    "Room",
    "RoomDefaults",
    "RoomEvent",
    "RoomService",
    "RoomSettings",
    "SubscribedTrack",
    "events",
    "parse_recording_rules",
    "parse_subscribe_rules",
    "rules_allow",
    "validate_room_name",
]
