"""Fixtures shared by the integration tiers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.control.receiver import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A status-callback receiver on loopback, for the length of one test."""
    got = Receiver()
    await got.start()
    yield got
    await got.close()
