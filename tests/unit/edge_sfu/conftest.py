"""Fixtures of the control-plane unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge_sfu.rooms import RoomDefaults, RoomEvent, RoomService
from edge_sfu.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = Store.in_data_dir(tmp_path)
    yield db
    db.close()


@pytest.fixture
async def service(store: Store) -> AsyncIterator[RoomService]:
    svc = RoomService(store, RoomDefaults(max_participants=3), sweep_interval=3600)
    await svc.start()
    yield svc
    await svc.close()


@pytest.fixture
def events(service: RoomService) -> list[RoomEvent]:
    seen: list[RoomEvent] = []
    service.add_listener(seen.append)
    return seen
