"""A real SFU application on an ephemeral loopback port, with a fresh data directory."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from edge_sfu.context import SfuContext, SfuSettings
from edge_sfu.identity import UnitIdentity, load_or_create_identity
from edge_sfu.keys import ApiKey, KeyStore
from edge_sfu.rooms import RoomDefaults
from edge_sfu.server import create_sfu_app


@dataclass
class Unit:
    """One running unit, as the tests see it."""

    data_dir: Path
    identity: UnitIdentity
    key: ApiKey
    context: SfuContext
    client: TestClient

    @property
    def auth(self) -> dict[str, str]:
        raw = f"{self.key.sid}:{self.key.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    @property
    def base(self) -> str:
        return str(self.client.make_url("")).rstrip("/")


async def start_unit(
    data_dir: Path,
    defaults: RoomDefaults | None = None,
    settings: SfuSettings | None = None,
) -> Unit:
    """Start a unit on ``data_dir`` (reusing its identity and keys if present)."""
    identity = load_or_create_identity(data_dir)
    keys = KeyStore(data_dir, builtin=identity.signing_key)
    key = keys.list()[0] if keys.list() else keys.create("tests")
    context = SfuContext.open(
        data_dir,
        identity,
        keys,
        defaults or RoomDefaults(max_participants=3),
        settings or SfuSettings(sweep_interval=0.05, callback_base_delay=0.05),
    )
    server = TestServer(create_sfu_app(context), host="127.0.0.1")
    # A failing test may hold a response open: do not wait aiohttp's default 60 s for it.
    await server.start_server(shutdown_timeout=2.0)
    client = TestClient(server)
    await client.start_server()
    return Unit(data_dir, identity, key, context, client)


@pytest.fixture
async def unit(tmp_path: Path) -> AsyncIterator[Unit]:
    started = await start_unit(tmp_path)
    yield started
    await started.client.close()
