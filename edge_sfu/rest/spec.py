"""Serves the OpenAPI document of the API, kept in the repository as ``openapi.yaml``.

The file is served as written (no YAML parser at run time, so none is a dependency).
"""

from __future__ import annotations

import functools
from importlib import resources

from aiohttp import web


@functools.cache
def openapi_text() -> str:
    """The OpenAPI document, as YAML."""
    return resources.files(__package__).joinpath("openapi.yaml").read_text(encoding="utf-8")


async def serve_yaml(request: web.Request) -> web.Response:
    """``GET /v1/openapi.yaml``."""
    return web.Response(text=openapi_text(), content_type="application/yaml")


def setup(app: web.Application) -> None:
    """Add the OpenAPI route to ``app``."""
    app.router.add_get("/v1/openapi.yaml", serve_yaml, allow_head=False)
