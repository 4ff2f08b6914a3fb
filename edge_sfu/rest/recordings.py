"""``/v1/Recordings`` and ``/v1/Rooms/{RoomSid}/Recordings``: list, fetch, delete, media.

``GET .../Media`` answers as Twilio does: a 302 redirect (with ``{"redirect_to": url}``) to a
short-lived signed URL, here on the unit itself (``/v1/Media/{Sid}``), which serves the file
without credentials while the signature holds, with HTTP Range support. Deleting a
recording removes its file; a download already under way keeps reading the open file.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from aiohttp import web

from ..errors import InvalidParameter, NotFound, TwilioError
from ..rooms.recordings import Recording
from ..sids import PARTICIPANT, RECORDING, ROOM, TRACK, is_sid
from ..store import RecordingFilter, fmt_time
from .auth import requires_key
from .common import base_url, context, json_response
from .forms import Field, choice, integer, read_query, string
from .paging import DATED_PAGING_FIELDS, list_response, page_window
from .rooms import room_or_404

STATUSES = ("processing", "completed", "deleted", "failed")
LIST_FIELDS: dict[str, Field] = {
    "Status": Field(choice(*STATUSES)),
    "SourceSid": Field(string(34)),
    "GroupingSid": Field(string(34)),
    "MediaType": Field(choice("audio", "video", "data")),
    **DATED_PAGING_FIELDS,
}
ROOM_LIST_FIELDS: dict[str, Field] = {
    "Status": Field(choice(*STATUSES)),
    "SourceSid": Field(string(34)),
    **DATED_PAGING_FIELDS,
}
MEDIA_FIELDS: dict[str, Field] = {"Ttl": Field(integer(1, 3600))}
SIGNED_FIELDS: dict[str, Field] = {
    "Expires": Field(integer(0, 999_999_999_999)),
    "Signature": Field(string(64)),
}
#: Lifetime of a media URL unless the request asks for less (Twilio's default).
MEDIA_TTL = 3600
CONTENT_TYPES = {
    "mka": "audio/x-matroska",
    "mkv": "video/x-matroska",
    "mp4": "video/mp4",
    "webm": "video/webm",
}


def recording_json(base: str, account_sid: str, rec: Recording, *, in_room: bool) -> dict[str, Any]:
    """A Recording resource (``in_room``: the RoomRecording shape of a room's list)."""
    url = (
        f"{base}/v1/Rooms/{rec.room_sid}/Recordings/{rec.sid}"
        if in_room
        else f"{base}/v1/Recordings/{rec.sid}"
    )
    body: dict[str, Any] = {
        "account_sid": account_sid,
        "status": rec.status,
        "date_created": fmt_time(rec.date_created),
        "date_updated": fmt_time(rec.date_updated),
        "date_deleted": fmt_time(rec.date_deleted),
        "sid": rec.sid,
        "source_sid": rec.source_sid,
        "size": rec.size,
        "type": rec.kind,
        "duration": rec.duration,
        "container_format": rec.container_format,
        "codec": rec.codec,
        "grouping_sids": rec.grouping_sids,
        "track_name": rec.track_name,
        "offset": rec.offset,
        "media_external_location": None,
        "status_callback": None,
        "status_callback_method": "POST",
        "url": url,
        "links": {"media": f"{url}/Media"},
    }
    if in_room:
        body["room_sid"] = rec.room_sid
    return body


def _grouping(value: str | None) -> tuple[str | None, str | None]:
    """``GroupingSid``: a room SID or a participant SID, as (room, participant)."""
    if value is None:
        return None, None
    if is_sid(value, ROOM):
        return value, None
    if is_sid(value, PARTICIPANT):
        return None, value
    raise InvalidParameter("GroupingSid must be a room SID (RM...) or a participant SID (PA...)")


def _source(query: dict[str, Any]) -> str | None:
    source: str | None = query.get("SourceSid")
    if source is not None and not is_sid(source, TRACK):
        raise InvalidParameter("SourceSid must be a track SID (MT...)")
    return source


@requires_key
async def list_recordings(request: web.Request) -> web.Response:
    """``GET /v1/Recordings``, newest first."""
    query = read_query(request, LIST_FIELDS)
    page, size = page_window(query)
    room, participant = _grouping(query.get("GroupingSid"))
    flt = RecordingFilter(
        status=query.get("Status"),
        source_sid=_source(query),
        participant_sid=participant,
        room_sid=room,
        kind=query.get("MediaType"),
        created_after=query.get("DateCreatedAfter"),
        created_before=query.get("DateCreatedBefore"),
    )
    return _list(request, flt, page, size, in_room=False)


@requires_key
async def list_room_recordings(request: web.Request) -> web.Response:
    """``GET /v1/Rooms/{RoomSid}/Recordings``, newest first."""
    query = read_query(request, ROOM_LIST_FIELDS)
    room = room_or_404(request)
    page, size = page_window(query)
    flt = RecordingFilter(
        status=query.get("Status"),
        source_sid=_source(query),
        room_sid=room.sid,
        created_after=query.get("DateCreatedAfter"),
        created_before=query.get("DateCreatedBefore"),
    )
    return _list(request, flt, page, size, in_room=True)


def _list(
    request: web.Request, flt: RecordingFilter, page: int, size: int, *, in_room: bool
) -> web.Response:
    ctx = context(request)
    rows = ctx.store.find_recordings(flt, size + 1, page * size)
    account = ctx.identity.account_sid
    return list_response(
        request,
        "recordings",
        rows,
        lambda base, r: recording_json(base, account, r, in_room=in_room),
        page,
        size,
    )


def recording_or_404(request: web.Request) -> Recording:
    """The recording named by the path (and by its room, for a room's recordings)."""
    sid = request.match_info["Sid"]
    rec = context(request).store.get_recording(sid) if is_sid(sid, RECORDING) else None
    room_key = request.match_info.get("room")
    if rec is not None and room_key is not None and room_or_404(request).sid != rec.room_sid:
        rec = None
    if rec is None:
        raise NotFound(f"The requested resource /Recordings/{sid[:64]} was not found")
    return rec


@requires_key
async def fetch_recording(request: web.Request) -> web.Response:
    """``GET /v1/Recordings/{Sid}`` and ``/v1/Rooms/{RoomSid}/Recordings/{Sid}``."""
    rec = recording_or_404(request)
    account = context(request).identity.account_sid
    in_room = "room" in request.match_info
    return json_response(recording_json(base_url(request), account, rec, in_room=in_room))


@requires_key
async def delete_recording(request: web.Request) -> web.Response:
    """``DELETE /v1/Recordings/{Sid}``: the media goes, the resource stays as ``deleted``."""
    rec = recording_or_404(request)
    if rec.status == "processing":
        raise TwilioError("The recording is in progress: it cannot be deleted yet", status=409)
    context(request).recordings.delete_media(rec)
    return web.Response(status=204)


@requires_key
async def recording_media(request: web.Request) -> web.Response:
    """``GET .../Recordings/{Sid}/Media``: a redirect to a short-lived signed URL."""
    query = read_query(request, MEDIA_FIELDS)
    rec = recording_or_404(request)
    if rec.status != "completed":
        raise NotFound(f"Recording {rec.sid} has no media ({rec.status})")
    return media_redirect(request, rec.sid, int(query.get("Ttl", MEDIA_TTL)))


def signed_media_path(auth_token: str, sid: str, ttl: int) -> str:
    """The path (from the server's root) of a media URL valid for ``ttl`` seconds."""
    expires = int(time.time()) + ttl
    return f"/v1/Media/{sid}?Expires={expires}&Signature={sign_media(auth_token, sid, expires)}"


def media_redirect(request: web.Request, sid: str, ttl: int) -> web.Response:
    """Twilio's answer to ``/Media``: 302 to a signed URL, the URL in the body as well."""
    path = signed_media_path(context(request).identity.auth_token, sid, ttl)
    location = f"{base_url(request)}{path}"
    response = json_response({"redirect_to": location}, status=302)
    response.headers["Location"] = location
    return response


def sign_media(auth_token: str, sid: str, expires: int) -> str:
    """The signature of a media URL: HMAC-SHA256 of the SID and expiry, keyed with the
    unit's auth token (rotating the token revokes every URL given out)."""
    message = f"{sid}:{expires}".encode()
    return hmac.new(auth_token.encode(), message, hashlib.sha256).hexdigest()


async def signed_media(request: web.Request) -> web.StreamResponse:
    """``GET /v1/Media/{Sid}?Expires&Signature``: the file, with Range support."""
    query = read_query(request, SIGNED_FIELDS)
    sid = request.match_info["Sid"]
    expires, signature = query.get("Expires"), query.get("Signature")
    ctx = context(request)
    if expires is None or signature is None:
        raise InvalidParameter("Media URLs are signed (Expires, Signature): get one from /Media")
    good = sign_media(ctx.identity.auth_token, sid, int(expires))
    if (
        not hmac.compare_digest(good.encode(), str(signature).encode())
        or int(expires) < time.time()
    ):
        raise TwilioError("This media URL is invalid or has expired", code=20003, status=403)
    path = ctx.recordings.media_path(sid)
    if path is None or not path.is_file():
        raise NotFound(f"The media of {sid[:64]} was not found (deleted?)")
    headers = {
        "Content-Type": CONTENT_TYPES.get(path.suffix.lstrip("."), "application/octet-stream"),
        # inline: a browser plays it; an HTML download link or any HTTP client saves it
        "Content-Disposition": f'inline; filename="{path.name}"',
        "Cache-Control": "private, no-store",
    }
    return web.FileResponse(path, headers=headers)


def setup(app: web.Application) -> None:
    """Add the Recordings routes to ``app``."""
    app.router.add_get("/v1/Recordings", list_recordings, allow_head=False)
    app.router.add_get("/v1/Recordings/{Sid}", fetch_recording, allow_head=False)
    app.router.add_delete("/v1/Recordings/{Sid}", delete_recording)
    app.router.add_get("/v1/Recordings/{Sid}/Media", recording_media, allow_head=False)
    room = "/v1/Rooms/{room}/Recordings"
    app.router.add_get(room, list_room_recordings, allow_head=False)
    app.router.add_get(room + "/{Sid}", fetch_recording, allow_head=False)
    app.router.add_get(room + "/{Sid}/Media", recording_media, allow_head=False)
    app.router.add_get("/v1/Media/{Sid}", signed_media, allow_head=False)
