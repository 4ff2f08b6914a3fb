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
    """Where resource URLs start: the configured public URL, else this request's origin."""
    configured = context(request).settings.public_base_url
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"


def json_response(body: Any, status: int = 200) -> web.Response:
    """A compact JSON response."""
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )
