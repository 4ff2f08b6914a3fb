"""Shared helpers for the provisioning tests (aiohttp test client and browser tests)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import provisioning
from provisioning.claim import current_claim_code
from provisioning.mdns import guess_addresses
from provisioning.sysinfo import SysInfo
from provisioning.throttle import Throttle
from tests.support.provisioning_backend import HandWrittenTestBackend, rest_app_routes

PASSWORD = "correct horse battery 42"
NEW_PASSWORD = "another long passphrase 7"
CSRF_RE = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    m = CSRF_RE.search(html)
    assert m, "page has no CSRF field"
    return m.group(1)


def make_app(
    backend: HandWrittenTestBackend,
    data_dir: Path,
    *,
    client_max_size: int = 1024**2,
    **kwargs: Any,
) -> tuple[web.Application, web.Application]:
    """The daemon stand-in: a root app with the REST stub and the admin pages mounted."""
    app = web.Application(client_max_size=client_max_size)
    rest_app_routes(app, backend)
    kwargs.setdefault("status_interval_s", 0.2)
    kwargs.setdefault("sysinfo", SysInfo(use_vcgencmd=False))
    kwargs.setdefault("throttle", Throttle(max_failures=5, lockout_s=60))
    admin = provisioning.setup(
        app,
        backend,
        data_dir=data_dir,
        unit_name=lambda: str(backend.load_settings()["unit"]["name"]),
        **kwargs,
    )
    return app, admin


@asynccontextmanager
async def running_client(
    app: web.Application, host: str = "127.0.0.1", **server_kw: Any
) -> AsyncIterator[TestClient]:
    """A test client on an ephemeral port (loopback unless ``host`` says otherwise)."""
    server = TestServer(app, host=host)
    await server.start_server(**server_kw)  # ssl= goes here, not to the constructor
    client = TestClient(server)
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def get_csrf(client: TestClient, path: str) -> str:
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 200, (path, resp.status)
    return csrf_of(await resp.text())


async def claim(client: TestClient, data_dir: Path, password: str = PASSWORD) -> None:
    """Claim the unit with the right code; the client is signed in afterwards."""
    code = current_claim_code(data_dir)
    assert code
    token = await get_csrf(client, "/admin/claim")
    resp = await client.post(
        "/admin/claim",
        data={"csrf": token, "code": code, "password": password, "confirm": password},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/admin/status"


async def login(client: TestClient, password: str = PASSWORD) -> int:
    token = await get_csrf(client, "/admin/login")
    resp = await client.post(
        "/admin/login", data={"csrf": token, "password": password}, allow_redirects=False
    )
    return resp.status


async def post_form(client: TestClient, path: str, data: dict[str, Any], page: str) -> Any:
    """Post a form with the CSRF token taken from ``page``."""
    token = await get_csrf(client, page)
    return await client.post(path, data={"csrf": token, **data}, allow_redirects=False)


async def get_with_cookie(client: TestClient, path: str, cookie: str) -> int:
    """Status of a GET sent with only the given session cookie (no cookie jar)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        resp = await s.get(
            client.make_url(path),
            headers={"Cookie": f"edge_admin={cookie}"},
            allow_redirects=False,
        )
        return resp.status


def basic(sid: str, secret: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(sid, secret)}


def lan_address() -> str:
    """A non-loopback address of this machine (skips the test where there is none)."""
    addrs = [a for a in guess_addresses() if not a.startswith("127.")]
    if not addrs:
        pytest.skip("this machine has no non-loopback address")
    return addrs[0]
