"""``/v1/Rooms``: create, list, fetch and complete rooms."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import InvalidParameter, NotFound
from ..rooms import RoomSettings
from ..rooms.model import (
    MAX_PARTICIPANT_DURATION,
    MAX_PARTICIPANTS_LIMIT,
    MAX_ROOM_NAME,
    MAX_ROOM_TIMEOUT,
    MIN_PARTICIPANT_DURATION,
    MIN_ROOM_TIMEOUT,
    ROOM_TYPE_ALIASES,
    Room,
)
from ..rooms.rules import parse_recording_rules
from ..sids import ROOM, is_sid
from ..store import RoomFilter
from .auth import requires_key
from .common import base_url, context, json_response, refuse_own_endpoint
from .forms import (
    Field,
    any_text,
    boolean,
    choice,
    integer,
    read_form,
    read_query,
    room_name,
    string,
    url,
)
from .paging import DATED_PAGING_FIELDS, list_response, page_window
from .views import room_json

CREATE_FIELDS: dict[str, Field] = {
    "UniqueName": Field(room_name),
    "Type": Field(string(32, code=53108)),
    "MaxParticipants": Field(integer(1, MAX_PARTICIPANTS_LIMIT, code=53107)),
    "StatusCallback": Field(url()),
    "StatusCallbackMethod": Field(choice("POST", "GET", fold=True)),
    "EmptyRoomTimeout": Field(integer(MIN_ROOM_TIMEOUT, MAX_ROOM_TIMEOUT)),
    "UnusedRoomTimeout": Field(integer(MIN_ROOM_TIMEOUT, MAX_ROOM_TIMEOUT)),
    "MaxParticipantDuration": Field(integer(MIN_PARTICIPANT_DURATION, MAX_PARTICIPANT_DURATION)),
    "RecordParticipantsOnConnect": Field(boolean),
    "VideoCodecs": Field(choice("VP8", "H264", fold=True), repeat=True),
    "AudioOnly": Field(boolean),
    "RecordingRules": Field(any_text()),
    # Accepted for compatibility; a unit is its own media region and always offers TURN.
    "EnableTurn": Field(boolean),
    "MediaRegion": Field(string(32)),
}
LIST_FIELDS: dict[str, Field] = {
    "Status": Field(choice("in-progress", "completed", "failed")),
    "UniqueName": Field(string(MAX_ROOM_NAME)),
    **DATED_PAGING_FIELDS,
}
UPDATE_FIELDS: dict[str, Field] = {"Status": Field(string(32))}


def settings_from_form(form: dict[str, Any], request: web.Request) -> RoomSettings:
    """A new room's settings: the unit's defaults overridden by the request."""
    defaults = context(request).rooms.defaults
    room_type = form.get("Type", "group")
    if room_type not in ROOM_TYPE_ALIASES:
        raise InvalidParameter(
            f"Room Type {room_type!r} is not supported: this unit hosts group rooms"
            " (group, group-small and peer-to-peer are accepted as group)",
            code=53108,
        )
    base = RoomSettings.from_defaults(defaults)
    return RoomSettings(
        type="group",
        max_participants=form.get("MaxParticipants", base.max_participants),
        empty_room_timeout=form.get("EmptyRoomTimeout", base.empty_room_timeout),
        unused_room_timeout=form.get("UnusedRoomTimeout", base.unused_room_timeout),
        max_participant_duration=form.get("MaxParticipantDuration", base.max_participant_duration),
        status_callback=form.get("StatusCallback", base.status_callback),
        status_callback_method=form.get("StatusCallbackMethod", base.status_callback_method),
        record_participants_on_connect=form.get(
            "RecordParticipantsOnConnect", base.record_participants_on_connect
        ),
        video_codecs=tuple(dict.fromkeys(form.get("VideoCodecs", base.video_codecs))),
        audio_only=form.get("AudioOnly", base.audio_only),
    )


@requires_key
async def create_room(request: web.Request) -> web.Response:
    """``POST /v1/Rooms``."""
    form = await read_form(request, CREATE_FIELDS)
    name = form.get("UniqueName")
    # A name that reads as a SID would make /Rooms/{x} ambiguous.
    if name is not None and is_sid(name, ROOM):
        raise InvalidParameter("UniqueName must not look like a Room SID", code=53101)
    if "StatusCallback" in form:
        refuse_own_endpoint(request, form["StatusCallback"], "StatusCallback")
    settings = settings_from_form(form, request)
    rules = parse_recording_rules(form["RecordingRules"]) if "RecordingRules" in form else None
    ctx = context(request)
    room = await ctx.rooms.create_room(name, settings)
    if rules is not None:
        room = await ctx.rooms.set_recording_rules(room.sid, rules)
    return _room_response(request, room, 201)


@requires_key
async def list_rooms(request: web.Request) -> web.Response:
    """``GET /v1/Rooms``, newest first."""
    query = read_query(request, LIST_FIELDS)
    page, size = page_window(query)
    flt = RoomFilter(
        status=query.get("Status"),
        unique_name=query.get("UniqueName"),
        created_after=query.get("DateCreatedAfter"),
        created_before=query.get("DateCreatedBefore"),
    )
    ctx = context(request)
    rows = ctx.store.find_rooms(flt, size + 1, page * size)
    live = [ctx.rooms.live_room(r.sid) or r for r in rows]
    account = ctx.identity.account_sid
    return list_response(
        request, "rooms", live, lambda base, r: room_json(base, account, r), page, size
    )


def room_or_404(request: web.Request) -> Room:
    """The room named by the ``room`` path part (a SID, or the name of a live room)."""
    key = request.match_info["room"]
    room = context(request).rooms.find_room(key)
    if room is None:
        raise NotFound(f"The requested resource /Rooms/{key[:64]} was not found")
    return room


def _room_response(request: web.Request, room: Room, status: int = 200) -> web.Response:
    return json_response(
        room_json(base_url(request), context(request).identity.account_sid, room), status
    )


@requires_key
async def fetch_room(request: web.Request) -> web.Response:
    """``GET /v1/Rooms/{Sid or UniqueName}``."""
    return _room_response(request, room_or_404(request))


@requires_key
async def update_room(request: web.Request) -> web.Response:
    """``POST /v1/Rooms/{Sid}`` with ``Status=completed``: end the room."""
    form = await read_form(request, UPDATE_FIELDS)
    if form.get("Status") != "completed":
        raise InvalidParameter("Status must be 'completed'", code=53112)
    room = await context(request).rooms.complete_room(room_or_404(request).sid)
    return _room_response(request, room)


def setup(app: web.Application) -> None:
    """Add the Rooms routes to ``app``."""
    app.router.add_post("/v1/Rooms", create_room)
    app.router.add_get("/v1/Rooms", list_rooms, allow_head=False)
    app.router.add_get("/v1/Rooms/{room}", fetch_room, allow_head=False)
    app.router.add_post("/v1/Rooms/{room}", update_room)
