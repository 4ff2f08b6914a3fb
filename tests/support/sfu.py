"""A real SFU application on an ephemeral loopback port, for signaling and browser tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from edge_sfu.context import SfuContext
from edge_sfu.identity import UnitIdentity, load_or_create_identity
from edge_sfu.keys import KeyStore
from edge_sfu.server import create_sfu_app
from edge_sfu.signaling import SIGNALING, SIGNALING_SETTINGS, SignalingService, SignalingSettings
from edge_sfu.tokens import mint_access_token


@dataclass
class RunningSfu:
    """What a test needs: URLs, the app's services, and a token minter."""

    app: web.Application
    port: int
    identity: UnitIdentity
    context: SfuContext

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/signaling"

    @property
    def signaling(self) -> SignalingService:
        return self.app[SIGNALING]

    def token(self, identity: str, room: str | None = "room1", ttl: int = 600) -> str:
        return mint_access_token(
            self.identity.signing_key, self.identity.account_sid, identity, room=room, ttl=ttl
        )


@contextlib.asynccontextmanager
async def running_sfu(
    data_dir: Path, settings: SignalingSettings | None = None
) -> AsyncIterator[RunningSfu]:
    """Start the SFU app on 127.0.0.1, port 0; stop it (bounded) on exit."""
    identity = load_or_create_identity(data_dir)
    keys = KeyStore(data_dir, builtin=identity.signing_key)
    context = SfuContext.open(data_dir, identity, keys)
    app = create_sfu_app(context)
    if settings is not None:
        app[SIGNALING_SETTINGS] = settings
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    port = server.sockets[0].getsockname()[1]
    try:
        yield RunningSfu(app, port, identity, context)
    finally:
        await runner.cleanup()
