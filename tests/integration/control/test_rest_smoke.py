"""The REST API answers with Twilio's shapes."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from edge_sfu.context import SfuContext
from edge_sfu.identity import load_or_create_identity
from edge_sfu.keys import KeyStore
from edge_sfu.server import create_sfu_app
from tests.support.certs import self_signed_server_context
from tests.support.sfu import Unit


async def test_create_fetch_list_complete(unit: Unit) -> None:
    c = unit.client
    resp = await c.post("/v1/Rooms", data={"UniqueName": "lobby"}, headers=unit.auth)
    assert resp.status == 201, await resp.text()
    room = await resp.json()
    assert room["unique_name"] == "lobby" and room["status"] == "in-progress"
    assert room["url"].endswith(f"/v1/Rooms/{room['sid']}")
    resp = await c.get("/v1/Rooms/lobby", headers=unit.auth)
    assert (await resp.json())["sid"] == room["sid"]
    resp = await c.get("/v1/Rooms", headers=unit.auth)
    page = await resp.json()
    assert page["meta"]["key"] == "rooms" and page["rooms"][0]["sid"] == room["sid"]
    resp = await c.post(f"/v1/Rooms/{room['sid']}", data={"Status": "completed"}, headers=unit.auth)
    assert (await resp.json())["status"] == "completed"


async def test_resource_urls_ignore_the_host_header(unit: Unit) -> None:
    evil = {**unit.auth, "Host": "evil.example:666"}
    resp = await unit.client.post("/v1/Rooms", data={"UniqueName": "h"}, headers=evil)
    room = await resp.json()
    assert room["url"] == f"{unit.base}/v1/Rooms/{room['sid']}"
    assert all(link.startswith(unit.base + "/") for link in room["links"].values())
    page = await (await unit.client.get("/v1/Rooms", headers=evil)).json()
    assert page["meta"]["url"].startswith(unit.base + "/v1/Rooms")
    assert "evil" not in str(page)


async def test_hsts_on_https_only(unit: Unit, tmp_path: Path) -> None:
    plain = await unit.client.get("/v1/openapi.yaml")
    assert "Strict-Transport-Security" not in plain.headers
    # A second unit of its own, served over HTTPS (an application owns its context).
    data_dir = tmp_path / "https-unit"
    identity = load_or_create_identity(data_dir)
    context = SfuContext.open(data_dir, identity, KeyStore(data_dir, builtin=identity.signing_key))
    server = TestServer(create_sfu_app(context), host="127.0.0.1")
    await server.start_server(ssl=self_signed_server_context(tmp_path), shutdown_timeout=2.0)
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("/v1/openapi.yaml", "/v1/Rooms", "/join/lobby"):
                url = f"https://127.0.0.1:{server.port}{path}"
                async with http.get(url, ssl=False) as resp:
                    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        await server.close()
