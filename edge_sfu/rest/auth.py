"""HTTP Basic authentication with an API key SID and secret, as Twilio's REST API does it."""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from ..errors import AuthenticationError
from ..keys import ApiKey
from .common import context

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_KEY: web.RequestKey[ApiKey] = web.RequestKey("edge_sfu.api_key", ApiKey)
REALM = 'Basic realm="edge-appliance"'


class Unauthorized(AuthenticationError):
    """20003 with the ``WWW-Authenticate`` challenge attached by the error middleware."""

    headers = {"WWW-Authenticate": REALM}


def authenticate(request: web.Request) -> ApiKey:
    """The API key the request authenticates with; ``Unauthorized`` (20003) otherwise."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > 1024:
        raise Unauthorized("Authenticate: HTTP Basic with an API key SID and secret")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized("Authenticate: malformed Basic credentials") from exc
    sid, sep, secret = decoded.partition(":")
    key = context(request).keys.check_secret(sid, secret) if sep else None
    if key is None:
        raise Unauthorized("Authenticate: unknown API key or wrong secret")
    return key


def requires_key(handler: Handler) -> Handler:
    """Decorate a handler so it runs only for a request with valid API key credentials."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        request[API_KEY] = authenticate(request)
        return await handler(request)

    return wrapped
