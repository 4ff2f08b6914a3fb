"""Connection limits on a real aiohttp site on loopback: header deadline, caps, TLS, WebSockets.

Idle clients connect from other loopback addresses (127.0.0.2, ...: all of 127/8 reaches
``lo`` on Linux) so that the per-client cap does not touch the client that checks the REST
side still answers.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from appliance.net_limits import ConnectionGuard, ConnectionLimits, GuardedTCPSite
from provisioning.tls import ensure_certificates, server_context
from tests.support.daemon import connect_from

IDLE = 300
SOURCES = 10  # 30 idle connections from each of 127.0.0.2 .. 127.0.0.11


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        await ws.send_str(msg.data)
    return ws


@asynccontextmanager
async def site(
    limits: ConnectionLimits, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[int, ConnectionGuard]]:
    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/ws", echo)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1, **limits.handler_args())
    await runner.setup()
    guard = ConnectionGuard(limits)
    s = GuardedTCPSite(runner, "127.0.0.1", 0, guard=guard, ssl_context=tls)
    await s.start()
    try:
        yield s.port, guard
    finally:
        await runner.cleanup()


async def connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = connect_from(source, port)
    sock.setblocking(False)
    return await asyncio.open_connection(sock=sock)


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True if the server closed (EOF or reset) within ``seconds``."""
    try:
        data = await asyncio.wait_for(reader.read(1024), seconds)
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return data == b"" or b"408" in data or b"400" in data


async def get_hello(port: int, scheme: str = "http", tls: ssl.SSLContext | None = None) -> int:
    url = f"{scheme}://127.0.0.1:{port}/hello"
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, timeout=timeout, ssl=tls or True) as r,
    ):
        return r.status


async def test_silent_and_half_sent_connections_are_closed_while_rest_answers() -> None:
    limits = ConnectionLimits(header_timeout=1.5, per_client=64)
    async with site(limits) as (port, guard):
        conns = [await connect(port, f"127.0.0.{2 + i % SOURCES}") for i in range(IDLE)]
        # A third of them send half a request line, and nothing more.
        for _, writer in conns[::3]:
            writer.write(b"GET /hel")
        await asyncio.sleep(0.2)
        assert guard.total == IDLE
        started = time.monotonic()
        assert await get_hello(port) == 200  # served meanwhile
        results = await asyncio.gather(*(closed_within(r, 5) for r, _ in conns))
        elapsed = time.monotonic() - started
        assert all(results), f"{results.count(False)} idle connections still open"
        assert elapsed < 5
        for _, writer in conns:
            writer.close()
        await asyncio.sleep(0.1)
        assert guard.total == 0 and guard.per_client == {}


async def test_a_client_over_its_cap_is_refused_others_are_served() -> None:
    limits = ConnectionLimits(header_timeout=30, per_client=5)
    async with site(limits) as (port, guard):
        held = [await connect(port, "127.0.0.20") for _ in range(5)]
        await asyncio.sleep(0.1)
        extra_reader, extra_writer = await connect(port, "127.0.0.20")
        assert await closed_within(extra_reader, 2)  # reset at once, well before 30 s
        for reader, _ in held:
            assert not await closed_within(reader, 0.05)
        assert guard.refused == 1
        assert await get_hello(port) == 200  # from 127.0.0.1: its own budget
        held[0][1].close()
        await asyncio.sleep(0.1)
        again_reader, again_writer = await connect(port, "127.0.0.20")
        again_writer.write(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert b"200 OK" in await asyncio.wait_for(again_reader.read(), 5)
        for _, writer in [*held, (extra_reader, extra_writer), (again_reader, again_writer)]:
            writer.close()


async def test_a_total_cap_refuses_beyond_it() -> None:
    limits = ConnectionLimits(header_timeout=30, per_client=100, total=8)
    async with site(limits) as (port, guard):
        held = [await connect(port, f"127.0.0.{30 + i}") for i in range(8)]
        await asyncio.sleep(0.1)
        reader, writer = await connect(port, "127.0.0.50")
        assert await closed_within(reader, 2)
        assert guard.total == 8
        for _, w in [*held, (reader, writer)]:
            w.close()


async def test_an_open_websocket_outlives_the_header_deadline() -> None:
    limits = ConnectionLimits(header_timeout=0.5)
    async with (
        site(limits) as (port, _),
        aiohttp.ClientSession() as http,
        http.ws_connect(f"http://127.0.0.1:{port}/ws") as ws,
    ):
        for i in range(4):
            await asyncio.sleep(0.5)  # 2 s in all: four header deadlines
            await ws.send_str(f"ping {i}")
            assert (await ws.receive(timeout=2)).data == f"ping {i}"


async def test_tls_handshake_and_headers_share_the_deadline(tmp_path: Path) -> None:
    paths = ensure_certificates(tmp_path, ["localhost"], ["127.0.0.1"], unit_name="t")
    limits = ConnectionLimits(header_timeout=1.0, per_client=3)
    async with site(limits, server_context(paths)) as (port, guard):
        silent = [await connect(port, "127.0.0.60") for _ in range(3)]
        await asyncio.sleep(0.1)
        # Counted before any handshake: a fourth from the same address is refused.
        fourth, fourth_w = await connect(port, "127.0.0.60")
        assert await closed_within(fourth, 0.5)
        client = ssl.create_default_context(cafile=str(paths.ca_cert))
        assert await get_hello(port, "https", client) == 200
        started = time.monotonic()
        assert all(await asyncio.gather(*(closed_within(r, 4) for r, _ in silent)))
        assert time.monotonic() - started < 3
        await asyncio.sleep(0.1)
        assert guard.total == 0
        for _, w in [*silent, (fourth, fourth_w)]:
            w.close()
