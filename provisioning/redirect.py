"""Plain HTTP to HTTPS, except for clients on the unit itself.

Browsers treat ``http://localhost`` as a secure context, so a kiosk's own browser (and tests)
may stay on plain HTTP; everyone else is sent to HTTPS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(request: web.Request) -> bool:
    """True when the TCP peer is on this machine (the Host header is not trusted for this)."""
    remote = request.remote or ""
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def https_redirect_middleware(
    https_port: int,
) -> Middleware:
    """A middleware for the app served on the plain-HTTP listener.

    Requests that arrived over TLS, or from loopback, pass; others get a 308 to the same
    path on ``https://<host>:<https_port>`` (308 keeps the method of a POST).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.secure or is_loopback(request):
            return await handler(request)
        host = request.url.host or "localhost"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal
        port = "" if https_port == 443 else f":{https_port}"
        raise web.HTTPPermanentRedirect(f"https://{host}{port}{request.rel_url}")

    return middleware


def redirect_app(https_port: int) -> web.Application:
    """A tiny app that only redirects, for a plain-HTTP listener that serves nothing else.

    Loopback clients get the same redirect here; to keep serving them over HTTP, add
    :func:`https_redirect_middleware` to the main app and serve it on both listeners instead.
    """
    app = web.Application(middlewares=[https_redirect_middleware(https_port)])

    async def nothing(request: web.Request) -> web.StreamResponse:
        raise web.HTTPNotFound()

    app.router.add_route("*", "/{tail:.*}", nothing)
    return app
