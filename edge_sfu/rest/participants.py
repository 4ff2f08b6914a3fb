"""``/v1/Rooms/{RoomSid}/Participants``: list, fetch and remove participants."""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidParameter, NotFound
from ..rooms import events as ev
from ..rooms.model import Participant, Room
from ..store import ParticipantFilter
from ..tokens import MAX_IDENTITY
from .auth import requires_key
from .common import base_url, context, json_response
from .forms import Field, choice, read_form, read_query, string
from .paging import DATED_PAGING_FIELDS, list_response, page_window
from .rooms import room_or_404
from .views import participant_json

LIST_FIELDS: dict[str, Field] = {
    "Status": Field(choice("connected", "disconnected", "reconnecting")),
    "Identity": Field(string(MAX_IDENTITY)),
    **DATED_PAGING_FIELDS,
}
UPDATE_FIELDS: dict[str, Field] = {"Status": Field(string(32))}


def participant_or_404(request: web.Request) -> tuple[Room, Participant]:
    """The room and participant named by the path (participant by SID or identity)."""
    room = room_or_404(request)
    key = request.match_info["participant"]
    participant = context(request).rooms.find_participant(room.sid, key)
    if participant is None:
        raise NotFound(f"The requested resource /Participants/{key[:64]} was not found")
    return room, participant


@requires_key
async def list_participants(request: web.Request) -> web.Response:
    """``GET /v1/Rooms/{RoomSid}/Participants``, oldest first."""
    query = read_query(request, LIST_FIELDS)
    room = room_or_404(request)
    page, size = page_window(query)
    flt = ParticipantFilter(
        status=query.get("Status"),
        identity=query.get("Identity"),
        created_after=query.get("DateCreatedAfter"),
        created_before=query.get("DateCreatedBefore"),
    )
    ctx = context(request)
    rows = ctx.store.find_participants(room.sid, flt, size + 1, page * size)
    # Live participants carry the current status (e.g. reconnecting) and published tracks.
    live = [ctx.rooms.live_participant(p.sid) or p for p in rows]
    account = ctx.identity.account_sid
    levels = ctx.signals.network_quality
    return list_response(
        request,
        "participants",
        live,
        lambda base, p: participant_json(base, account, p, levels.get(p.sid)),
        page,
        size,
    )


def _participant_response(request: web.Request, participant: Participant) -> web.Response:
    ctx = context(request)
    account = ctx.identity.account_sid
    level = ctx.signals.network_quality.get(participant.sid)
    return json_response(participant_json(base_url(request), account, participant, level))


@requires_key
async def fetch_participant(request: web.Request) -> web.Response:
    """``GET /v1/Rooms/{RoomSid}/Participants/{Sid or Identity}``."""
    _, participant = participant_or_404(request)
    return _participant_response(request, participant)


@requires_key
async def update_participant(request: web.Request) -> web.Response:
    """``POST .../Participants/{Sid}`` with ``Status=disconnected``: remove the participant."""
    form = await read_form(request, UPDATE_FIELDS)
    if form.get("Status") != "disconnected":
        raise InvalidParameter("Status must be 'disconnected'")
    _, participant = participant_or_404(request)
    if participant.connected:
        await context(request).rooms.disconnect(participant.sid, ev.REMOVED_BY_REST)
    return _participant_response(request, participant)


def setup(app: web.Application) -> None:
    """Add the Participants routes to ``app``."""
    base = "/v1/Rooms/{room}/Participants"
    app.router.add_get(base, list_participants, allow_head=False)
    app.router.add_get(base + "/{participant}", fetch_participant, allow_head=False)
    app.router.add_post(base + "/{participant}", update_participant)
