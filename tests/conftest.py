"""Suite-wide settings and the fixtures shared by the tiers.

Nothing a test starts announces itself beyond loopback: the variable is set before any test
runs, so in-process announcers and every child process (daemons, including one that restarts
itself after a factory reset) inherit it. The fixtures give a provisioning admin app on its
hand-written backend.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from provisioning.mdns import LOOPBACK_ONLY_ENV
from tests.support.provisioning_app import claim, make_app, running_client
from tests.support.provisioning_backend import HandWrittenTestBackend


def pytest_configure(config: pytest.Config) -> None:
    os.environ[LOOPBACK_ONLY_ENV] = "1"


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
