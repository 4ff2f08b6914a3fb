"""The REST tests' unit: a real SFU application with a fresh data directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.sfu import Unit, start_unit


@pytest.fixture
async def unit(tmp_path: Path) -> AsyncIterator[Unit]:
    started = await start_unit(tmp_path)
    yield started
    await started.client.close()
