"""The real daemon under idle-connection pressure and with too few file descriptors.

Idle clients connect from 127.0.0.2 and up (all of 127/8 reaches ``lo``), so the per-client
cap does not stop the client on 127.0.0.1 that checks REST still answers.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

from appliance.net_limits import ACCEPT_ERROR, ConnectionLimits
from tests.support.daemon import connect_from, running_daemon

HEADER_TIMEOUT = ConnectionLimits().header_timeout


def rest_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/v1/Rooms", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@contextmanager
def idle_connections(port: int, count: int, sources: int) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            socks.append(connect_from(f"127.0.0.{2 + i % sources}", port))
        yield socks
    finally:
        for s in socks:
            s.close()


def closed_by_peer(s: socket.socket) -> bool:
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_idle_connections_are_closed_and_rest_answers_meanwhile(tmp_path: Path) -> None:
    with running_daemon(tmp_path) as daemon:
        url = daemon.wait_ready()
        port = int(url.rsplit(":", 1)[1])
        with idle_connections(port, 300, sources=10) as socks:
            for s in socks[::3]:
                s.sendall(b"GET /v1/Ro")  # half a request line, then nothing
            started = time.monotonic()
            assert rest_status(url) == 401  # answered while 300 connections sit idle
            for s in socks:
                s.settimeout(max(0.1, started + HEADER_TIMEOUT + 5 - time.monotonic()))
            still_open = [s for s in socks if not closed_by_peer(s)]
            assert not still_open, f"{len(still_open)} idle connections still open"
            assert time.monotonic() - started < HEADER_TIMEOUT + 5
        assert rest_status(url) == 401


def test_accept_errors_are_logged_once_per_interval(tmp_path: Path) -> None:
    with running_daemon(tmp_path) as daemon:
        url = daemon.wait_ready()
        port = int(url.rsplit(":", 1)[1])
        pid = daemon.proc.pid
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        # Room for a few connections only: the next accept() fails with EMFILE.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_fds(pid) + 5, hard))
        try:
            # Distinct sources, so the per-client cap is not what refuses them.
            with idle_connections(port, 60, sources=60):
                time.sleep(4)  # asyncio retries accept() every second
                errors = [line for line in daemon.output if ACCEPT_ERROR in line]
                assert len(errors) == 1, errors
                assert "more in the last" in errors[0]
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        time.sleep(HEADER_TIMEOUT + 1)  # the held ones time out; the backlog drains
        assert rest_status(url) == 401
        assert not any("Traceback" in line for line in daemon.output), "".join(daemon.output)


def test_over_https_silent_handshakes_are_dropped_and_websockets_keep_their_own_timeout(
    tmp_path: Path,
) -> None:
    config: dict[str, dict[str, object]] = {"http": {"tls": True, "redirect_port": 0}}
    with running_daemon(tmp_path, config) as daemon:
        daemon.wait_ready()
        url = daemon.url.replace("http://", "https://")
        port = int(url.rsplit(":", 1)[1])
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE

        async def scenario() -> float:
            silent = connect_from("127.0.0.2", port)  # never sends a ClientHello
            async with aiohttp.ClientSession() as http:
                async with http.get(url + "/v1/Rooms", ssl=insecure) as response:
                    assert response.status == 401
                started = time.monotonic()
                # An upgraded connection that never joins: closed by signaling's own join
                # timeout (10 s), not by the 5 s header deadline.
                async with http.ws_connect(url + "/v1/signaling", ssl=insecure) as ws:
                    said = [str(m.data) async for m in ws]  # until the server closes
                    lived = time.monotonic() - started
            silent.settimeout(1)
            assert closed_by_peer(silent)
            silent.close()
            assert any("no join message in time" in m for m in said), said
            return lived

        lived = asyncio.run(scenario())
        assert HEADER_TIMEOUT + 2 < lived < 15
