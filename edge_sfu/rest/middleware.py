"""Every failure under ``/v1/`` answers in Twilio's error JSON, never a stack trace."""

from __future__ import annotations

import logging

from aiohttp import web

from ..errors import TwilioError
from .auth import Handler
from .common import json_response

log = logging.getLogger(__name__)

#: Paths whose handlers answer for themselves (a WebSocket cannot turn into a JSON error).
UNMANAGED = ("/v1/signaling",)
#: One year: browsers that reached the unit over HTTPS keep to HTTPS.
HSTS = "max-age=31536000"
#: Twilio codes for plain HTTP failures (routing, method, size).
_HTTP_CODES = {404: 20404, 405: 20004, 413: 21617, 415: 20001}


@web.middleware
async def twilio_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render ``TwilioError``s and HTTP errors of ``/v1/`` requests as Twilio's error JSON."""
    if not request.path.startswith("/v1/") or request.path.startswith(UNMANAGED):
        return await handler(request)
    try:
        return await handler(request)
    except TwilioError as exc:
        response = json_response(exc.to_json(), status=exc.status)
        response.headers.update(getattr(exc, "headers", {}))
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, 20001)
        error = TwilioError(exc.reason, code=code, status=exc.status)
        response = json_response(error.to_json(), status=exc.status)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        error = TwilioError("Internal error", code=20500, status=500)
        return json_response(error.to_json(), status=500)


async def strict_transport(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``Strict-Transport-Security`` on every response sent over TLS (never over plain HTTP,
    where browsers ignore it; the scheme comes from the connection, not from headers)."""
    if request.secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
