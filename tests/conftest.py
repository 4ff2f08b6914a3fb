"""Fixtures shared by the tiers: a provisioning admin app on its hand-written backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.support.provisioning_app import claim, make_app, running_client
from tests.support.provisioning_backend import HandWrittenTestBackend


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def backend(tmp_path: Path) -> HandWrittenTestBackend:
    return HandWrittenTestBackend(tmp_path / "config.toml")


@pytest.fixture
async def client(backend: HandWrittenTestBackend, data_dir: Path) -> AsyncIterator[TestClient]:
    app, _ = make_app(backend, data_dir)
    async with running_client(app) as c:
        yield c


@pytest.fixture
async def signed_in(client: TestClient, data_dir: Path) -> TestClient:
    await claim(client, data_dir)
    return client
