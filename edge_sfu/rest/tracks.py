"""Published and Subscribed Tracks of a participant (read-only, as in Twilio)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web

from ..errors import NotFound
from ..rooms.model import Participant, PublishedTrack, SubscribedTrack
from .auth import requires_key
from .common import base_url, json_response
from .forms import read_query
from .paging import PAGING_FIELDS, list_response, page_window
from .participants import participant_or_404
from .views import published_track_json, subscribed_track_json

T = TypeVar("T")


def _published(participant: Participant) -> Iterable[PublishedTrack]:
    return participant.published.values()


def _subscribed(participant: Participant) -> Iterable[SubscribedTrack]:
    return participant.subscribed.values()


def _page(
    request: web.Request,
    key: str,
    tracks_of: Callable[[Participant], Iterable[T]],
    render: Callable[[str, T], dict[str, Any]],
) -> web.Response:
    """One page of the path's participant's tracks (none once it has disconnected)."""
    _, participant = participant_or_404(request)
    tracks = list(tracks_of(participant)) if participant.connected else []
    query = read_query(request, PAGING_FIELDS)
    page, size = page_window(query)
    window = tracks[page * size : (page + 1) * size + 1]
    return list_response(request, key, window, render, page, size)


@requires_key
async def list_published(request: web.Request) -> web.Response:
    """``GET .../Participants/{Sid}/PublishedTracks``."""
    return _page(request, "published_tracks", _published, published_track_json)


@requires_key
async def fetch_published(request: web.Request) -> web.Response:
    """``GET .../PublishedTracks/{Sid or Name}``."""
    _, participant = participant_or_404(request)
    key = request.match_info["track"]
    for track in participant.published.values():
        if key in (track.sid, track.name):
            return json_response(published_track_json(base_url(request), track))
    raise NotFound(f"The requested resource /PublishedTracks/{key[:64]} was not found")


@requires_key
async def list_subscribed(request: web.Request) -> web.Response:
    """``GET .../Participants/{Sid}/SubscribedTracks``."""
    return _page(request, "subscribed_tracks", _subscribed, subscribed_track_json)


@requires_key
async def fetch_subscribed(request: web.Request) -> web.Response:
    """``GET .../SubscribedTracks/{Sid}``."""
    _, participant = participant_or_404(request)
    key = request.match_info["track"]
    track = participant.subscribed.get(key)
    if track is None:
        raise NotFound(f"The requested resource /SubscribedTracks/{key[:64]} was not found")
    return json_response(subscribed_track_json(base_url(request), track))


def setup(app: web.Application) -> None:
    """Add the track routes to ``app``."""
    base = "/v1/Rooms/{room}/Participants/{participant}"
    app.router.add_get(base + "/PublishedTracks", list_published, allow_head=False)
    app.router.add_get(base + "/PublishedTracks/{track}", fetch_published, allow_head=False)
    app.router.add_get(base + "/SubscribedTracks", list_subscribed, allow_head=False)
    app.router.add_get(base + "/SubscribedTracks/{track}", fetch_subscribed, allow_head=False)
