"""``/v1/Compositions`` and ``/v1/CompositionHooks``, with Twilio's parameters and fields."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..errors import InvalidParameter, NotFound, TwilioError
from ..recording.compositions import validate_spec
from ..recording.layout import DEFAULT_RESOLUTION
from ..rooms.model import utcnow
from ..rooms.recordings import Composition, CompositionHook
from ..sids import COMPOSITION, COMPOSITION_HOOK, ROOM, is_sid, new_sid
from ..store import CompositionFilter, fmt_time
from .auth import requires_key
from .common import base_url, context, json_response, refuse_own_endpoint
from .forms import Field, any_text, boolean, choice, read_form, read_query, string, url
from .paging import DATED_PAGING_FIELDS, PAGING_FIELDS, list_response, page_window
from .recordings import MEDIA_FIELDS, MEDIA_TTL, media_redirect

SPEC_FIELDS: dict[str, Field] = {
    "VideoLayout": Field(any_text()),
    "AudioSources": Field(string(128), repeat=True),
    "AudioSourcesExcluded": Field(string(128), repeat=True),
    "Resolution": Field(string(11)),
    "Format": Field(choice("mp4", "webm")),
    "StatusCallback": Field(url()),
    "StatusCallbackMethod": Field(choice("POST", "GET", fold=True)),
    "Trim": Field(boolean),
}
CREATE_FIELDS: dict[str, Field] = {"RoomSid": Field(string(34)), **SPEC_FIELDS}
LIST_FIELDS: dict[str, Field] = {
    "Status": Field(choice("enqueued", "processing", "completed", "deleted", "failed")),
    "RoomSid": Field(string(34)),
    **DATED_PAGING_FIELDS,
}
HOOK_FIELDS: dict[str, Field] = {
    "FriendlyName": Field(string(100)),
    "Enabled": Field(boolean),
    **SPEC_FIELDS,
}
HOOK_LIST_FIELDS: dict[str, Field] = {
    "Enabled": Field(boolean),
    **PAGING_FIELDS,
}


def _spec(form: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "audio_sources": form.get("AudioSources", []),
        "audio_sources_excluded": form.get("AudioSourcesExcluded", []),
        "trim": form.get("Trim", True),
    }
    if "VideoLayout" in form:
        spec["video_layout"] = form["VideoLayout"]
    return spec


def _layout_json(layout: object) -> object:
    if isinstance(layout, str):
        try:
            return json.loads(layout)
        except ValueError:
            return {}
    return layout or {}


def composition_json(base: str, account_sid: str, c: Composition) -> dict[str, Any]:
    """A Composition resource."""
    url = f"{base}/v1/Compositions/{c.sid}"
    return {
        "account_sid": account_sid,
        "status": c.status,
        "date_created": fmt_time(c.date_created),
        "date_completed": fmt_time(c.date_completed),
        "date_deleted": fmt_time(c.date_deleted),
        "sid": c.sid,
        "room_sid": c.room_sid,
        "audio_sources": c.spec.get("audio_sources", []),
        "audio_sources_excluded": c.spec.get("audio_sources_excluded", []),
        "video_layout": _layout_json(c.spec.get("video_layout")),
        "resolution": c.resolution,
        "trim": c.spec.get("trim", True),
        "format": c.format,
        "bitrate": c.bitrate,
        "size": c.size,
        "duration": c.duration,
        "media_external_location": None,
        "status_callback": c.status_callback,
        "status_callback_method": c.status_callback_method,
        "url": url,
        "links": {"media": f"{url}/Media"},
    }


def hook_json(base: str, account_sid: str, h: CompositionHook) -> dict[str, Any]:
    """A CompositionHook resource."""
    return {
        "account_sid": account_sid,
        "friendly_name": h.friendly_name,
        "enabled": h.enabled,
        "date_created": fmt_time(h.date_created),
        "date_updated": fmt_time(h.date_updated),
        "sid": h.sid,
        "audio_sources": h.spec.get("audio_sources", []),
        "audio_sources_excluded": h.spec.get("audio_sources_excluded", []),
        "video_layout": _layout_json(h.spec.get("video_layout")),
        "resolution": h.resolution,
        "trim": h.spec.get("trim", True),
        "format": h.format,
        "status_callback": h.status_callback,
        "status_callback_method": h.status_callback_method,
        "url": f"{base}/v1/CompositionHooks/{h.sid}",
    }


# -- compositions ------------------------------------------------------------------------


@requires_key
async def create_composition(request: web.Request) -> web.Response:
    """``POST /v1/Compositions``."""
    form = await read_form(request, CREATE_FIELDS)
    room_sid = form.get("RoomSid")
    if room_sid is None:
        raise InvalidParameter("RoomSid is required")
    if "StatusCallback" in form:
        refuse_own_endpoint(request, form["StatusCallback"], "StatusCallback")
    ctx = context(request)
    room = ctx.rooms.find_room(room_sid) if is_sid(room_sid, ROOM) else None
    if room is None:
        raise NotFound(f"Room {room_sid[:64]} not found")
    spec = _spec(form)
    fmt, resolution = form.get("Format", "webm"), form.get("Resolution", DEFAULT_RESOLUTION)
    ctx.compositions.check(room, spec, fmt, resolution)
    comp = ctx.compositions.create(
        room,
        spec,
        fmt,
        resolution,
        form.get("StatusCallback"),
        form.get("StatusCallbackMethod", "POST"),
    )
    return json_response(composition_json(base_url(request), ctx.identity.account_sid, comp), 201)


@requires_key
async def list_compositions(request: web.Request) -> web.Response:
    """``GET /v1/Compositions``, newest first."""
    query = read_query(request, LIST_FIELDS)
    page, size = page_window(query)
    flt = CompositionFilter(
        status=query.get("Status"),
        room_sid=query.get("RoomSid"),
        created_after=query.get("DateCreatedAfter"),
        created_before=query.get("DateCreatedBefore"),
    )
    ctx = context(request)
    rows = ctx.store.find_compositions(flt, size + 1, page * size)
    account = ctx.identity.account_sid
    return list_response(
        request,
        "compositions",
        rows,
        lambda base, c: composition_json(base, account, c),
        page,
        size,
    )


def composition_or_404(request: web.Request) -> Composition:
    """The composition named by the path."""
    sid = request.match_info["Sid"]
    comp = context(request).store.get_composition(sid) if is_sid(sid, COMPOSITION) else None
    if comp is None:
        raise NotFound(f"The requested resource /Compositions/{sid[:64]} was not found")
    return comp


@requires_key
async def fetch_composition(request: web.Request) -> web.Response:
    """``GET /v1/Compositions/{Sid}``."""
    ctx = context(request)
    comp = composition_or_404(request)
    return json_response(composition_json(base_url(request), ctx.identity.account_sid, comp))


@requires_key
async def delete_composition(request: web.Request) -> web.Response:
    """``DELETE /v1/Compositions/{Sid}``: the media goes, the resource stays as ``deleted``."""
    comp = composition_or_404(request)
    if comp.status in ("enqueued", "processing"):
        raise TwilioError("The composition is being made: it cannot be deleted yet", status=409)
    context(request).compositions.delete(comp)
    return web.Response(status=204)


@requires_key
async def composition_media(request: web.Request) -> web.Response:
    """``GET /v1/Compositions/{Sid}/Media``: a redirect to a short-lived signed URL."""
    query = read_query(request, MEDIA_FIELDS)
    comp = composition_or_404(request)
    if comp.status != "completed":
        raise NotFound(f"Composition {comp.sid} has no media ({comp.status})")
    return media_redirect(request, comp.sid, int(query.get("Ttl", MEDIA_TTL)))


# -- hooks -------------------------------------------------------------------------------


def _hook_from_form(form: dict[str, Any], hook: CompositionHook | None) -> CompositionHook:
    now = utcnow()
    spec = _spec(form) if hook is None or _touches_spec(form) else dict(hook.spec)
    resolution = form.get("Resolution", hook.resolution if hook else DEFAULT_RESOLUTION)
    validate_spec(dict(spec), resolution)  # the layout stays as written, parsed per room
    return CompositionHook(
        sid=hook.sid if hook else new_sid(COMPOSITION_HOOK),
        friendly_name=form["FriendlyName"],
        enabled=form.get("Enabled", hook.enabled if hook else True),
        format=form.get("Format", hook.format if hook else "webm"),
        resolution=resolution,
        spec=spec,
        status_callback=form.get("StatusCallback", hook.status_callback if hook else None),
        status_callback_method=form.get(
            "StatusCallbackMethod", hook.status_callback_method if hook else "POST"
        ),
        date_created=hook.date_created if hook else now,
        date_updated=now,
    )


def _touches_spec(form: dict[str, Any]) -> bool:
    return any(k in form for k in ("VideoLayout", "AudioSources", "AudioSourcesExcluded", "Trim"))


async def _hook_form(request: web.Request) -> dict[str, Any]:
    form = await read_form(request, HOOK_FIELDS)
    if "FriendlyName" not in form:
        raise InvalidParameter("FriendlyName is required")
    if "StatusCallback" in form:
        refuse_own_endpoint(request, form["StatusCallback"], "StatusCallback")
    return form


@requires_key
async def create_hook(request: web.Request) -> web.Response:
    """``POST /v1/CompositionHooks``."""
    hook = _hook_from_form(await _hook_form(request), None)
    ctx = context(request)
    ctx.store.save_hook(hook)
    return json_response(hook_json(base_url(request), ctx.identity.account_sid, hook), 201)


def hook_or_404(request: web.Request) -> CompositionHook:
    """The composition hook named by the path."""
    sid = request.match_info["Sid"]
    hook = context(request).store.get_hook(sid) if is_sid(sid, COMPOSITION_HOOK) else None
    if hook is None:
        raise NotFound(f"The requested resource /CompositionHooks/{sid[:64]} was not found")
    return hook


@requires_key
async def update_hook(request: web.Request) -> web.Response:
    """``POST /v1/CompositionHooks/{Sid}``."""
    form = await _hook_form(request)
    hook = _hook_from_form(form, hook_or_404(request))
    ctx = context(request)
    ctx.store.save_hook(hook)
    return json_response(hook_json(base_url(request), ctx.identity.account_sid, hook))


@requires_key
async def fetch_hook(request: web.Request) -> web.Response:
    """``GET /v1/CompositionHooks/{Sid}``."""
    ctx = context(request)
    return json_response(
        hook_json(base_url(request), ctx.identity.account_sid, hook_or_404(request))
    )


@requires_key
async def delete_hook(request: web.Request) -> web.Response:
    """``DELETE /v1/CompositionHooks/{Sid}``."""
    context(request).store.delete_hook(hook_or_404(request).sid)
    return web.Response(status=204)


@requires_key
async def list_hooks(request: web.Request) -> web.Response:
    """``GET /v1/CompositionHooks``, oldest first."""
    query = read_query(request, HOOK_LIST_FIELDS)
    page, size = page_window(query)
    ctx = context(request)
    rows = ctx.store.find_hooks(query.get("Enabled"), size + 1, page * size)
    account = ctx.identity.account_sid
    return list_response(
        request, "composition_hooks", rows, lambda b, h: hook_json(b, account, h), page, size
    )


def setup(app: web.Application) -> None:
    """Add the Compositions and CompositionHooks routes to ``app``."""
    app.router.add_post("/v1/Compositions", create_composition)
    app.router.add_get("/v1/Compositions", list_compositions, allow_head=False)
    app.router.add_get("/v1/Compositions/{Sid}", fetch_composition, allow_head=False)
    app.router.add_delete("/v1/Compositions/{Sid}", delete_composition)
    app.router.add_get("/v1/Compositions/{Sid}/Media", composition_media, allow_head=False)
    app.router.add_post("/v1/CompositionHooks", create_hook)
    app.router.add_get("/v1/CompositionHooks", list_hooks, allow_head=False)
    app.router.add_get("/v1/CompositionHooks/{Sid}", fetch_hook, allow_head=False)
    app.router.add_post("/v1/CompositionHooks/{Sid}", update_hook)
    app.router.add_delete("/v1/CompositionHooks/{Sid}", delete_hook)
