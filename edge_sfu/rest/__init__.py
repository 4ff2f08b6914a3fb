"""The REST API v1, shaped after Twilio Video's: rooms, participants, tracks, rules,
recordings, tokens, invites, and its OpenAPI document (``openapi.yaml``, served at
``/v1/openapi.yaml``)."""

from __future__ import annotations

from aiohttp import web

from . import (
    compositions,
    invites,
    participants,
    recordings,
    rooms,
    rules,
    spec,
    tokens,
    tracks,
)
from .middleware import strict_transport, twilio_errors

__all__ = ["setup_rest", "twilio_errors"]


def setup_rest(app: web.Application) -> None:
    """Add every REST route to ``app`` (the error middleware is added by the caller), and HSTS
    to every HTTPS response of ``app`` and the applications mounted on it."""
    modules = (tokens, invites, rooms, participants, tracks, rules, recordings, compositions)
    for module in (*modules, spec):
        module.setup(app)
    app.on_response_prepare.append(strict_transport)
