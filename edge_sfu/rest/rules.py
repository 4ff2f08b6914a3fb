"""Subscribe Rules of a participant and Recording Rules of a room."""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidParameter, RoomError
from ..rooms import parse_recording_rules, parse_subscribe_rules
from .auth import requires_key
from .common import context, json_response
from .forms import Field, any_text, read_form
from .participants import participant_or_404
from .rooms import room_or_404
from .views import recording_rules_json, subscribe_rules_json

RULES_FIELDS: dict[str, Field] = {"Rules": Field(any_text())}


async def _rules_field(request: web.Request, missing_code: int) -> str:
    """The request's ``Rules`` form field; refused with ``missing_code`` when absent."""
    form = await read_form(request, RULES_FIELDS)
    if "Rules" not in form:
        raise InvalidParameter("Rules is required", code=missing_code)
    rules: str = form["Rules"]  # any_text() checked it is text
    return rules


@requires_key
async def fetch_subscribe_rules(request: web.Request) -> web.Response:
    """``GET .../Participants/{Sid}/SubscribeRules``."""
    _, participant = participant_or_404(request)
    return json_response(subscribe_rules_json(participant))


@requires_key
async def update_subscribe_rules(request: web.Request) -> web.Response:
    """``POST .../Participants/{Sid}/SubscribeRules`` with ``Rules`` (a JSON array)."""
    rules = parse_subscribe_rules(await _rules_field(request, 53215))
    _, participant = participant_or_404(request)
    if not participant.connected:
        raise RoomError("Participant is disconnected: its rules cannot change", code=53204)
    updated = await context(request).rooms.set_subscribe_rules(participant.sid, rules)
    return json_response(subscribe_rules_json(updated), 202)


@requires_key
async def fetch_recording_rules(request: web.Request) -> web.Response:
    """``GET /v1/Rooms/{RoomSid}/RecordingRules``."""
    return json_response(recording_rules_json(room_or_404(request)))


@requires_key
async def update_recording_rules(request: web.Request) -> web.Response:
    """``POST /v1/Rooms/{RoomSid}/RecordingRules`` with ``Rules`` (a JSON array)."""
    rules = parse_recording_rules(await _rules_field(request, 53120))
    room = room_or_404(request)
    if not room.in_progress:
        raise RoomError("Room completed: its rules cannot change", code=53118)
    updated = await context(request).rooms.set_recording_rules(room.sid, rules)
    return json_response(recording_rules_json(updated))


def setup(app: web.Application) -> None:
    """Add the rules routes to ``app``."""
    sub = "/v1/Rooms/{room}/Participants/{participant}/SubscribeRules"
    app.router.add_get(sub, fetch_subscribe_rules, allow_head=False)
    app.router.add_post(sub, update_subscribe_rules)
    app.router.add_get("/v1/Rooms/{room}/RecordingRules", fetch_recording_rules, allow_head=False)
    app.router.add_post("/v1/Rooms/{room}/RecordingRules", update_recording_rules)
