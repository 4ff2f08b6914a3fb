"""A running admin server (the hand-written test backend) and a Chromium page per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, async_playwright

from tests.support.provisioning_app import make_app, running_client
from tests.support.provisioning_backend import HandWrittenTestBackend

from .pagehelpers import CHROMIUM, launch

pytestmark = pytest.mark.browser


@dataclass
class Unit:
    """What a browser test needs to know about the unit under test."""

    base: str
    backend: HandWrittenTestBackend
    data_dir: Path
    client: TestClient


@pytest.fixture
async def unit(tmp_path: Path) -> AsyncIterator[Unit]:
    backend = HandWrittenTestBackend(tmp_path / "config.toml")
    data_dir = tmp_path / "data"
    app, _ = make_app(backend, data_dir)
    async with running_client(app) as client:
        yield Unit(f"http://127.0.0.1:{client.port}", backend, data_dir, client)


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            context = await browser.new_context(
                viewport={"width": 1280, "height": 800}, accept_downloads=True
            )
            pg = await context.new_page()
            pg.set_default_timeout(15_000)
            yield pg
            await context.close()
        finally:
            await browser.close()
