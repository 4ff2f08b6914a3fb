"""Small helpers every REST module uses: the context, the base URL, JSON responses."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..context import SFU_CONTEXT, SfuContext


def context(request: web.Request) -> SfuContext:
    """The SFU context of the application serving ``request``."""
    return request.config_dict[SFU_CONTEXT]


def base_url(request: web.Request) -> str:
    """Where resource URLs start: the configured public URL, else the address and port the
    request arrived at (never the ``Host`` header: a client could put anything there, and a
    URL in a response would then point wherever it liked).
    """
    configured = context(request).settings.public_base_url
    if configured:
        return configured.rstrip("/")
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:  # a Unix socket, or closed
        return f"{request.scheme}://localhost"
    host, port = str(sockname[0]), int(sockname[1])
    if ":" in host:
        host = f"[{host.split('%', 1)[0]}]"  # IPv6, without a zone index
    return f"{request.scheme}://{host}:{port}"


def json_response(body: Any, status: int = 200) -> web.Response:
    """A compact JSON response."""
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )
