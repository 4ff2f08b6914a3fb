"""``/metrics`` of the daemon's application during a three-party call, read by Prometheus's
own text parser; and who may read it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from appliance.app import build_app
from appliance.config import parse_settings
from appliance.metrics import handle_metrics
from appliance.state import DaemonState
from edge_sfu.client import Room, connect
from edge_sfu.stats import track_stats
from edge_sfu.tokens import mint_access_token
from tests.support.media import PatternVideoTrack, ToneAudioTrack

pytestmark = pytest.mark.timeout(180)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@contextlib.asynccontextmanager
async def running_hub(
    tmp_path: Path, host: str = "127.0.0.1", **metrics: object
) -> AsyncIterator[tuple[DaemonState, web.Application, int]]:
    """The daemon's own application (role hub: no devices), served on ``host``, port 0."""
    settings = parse_settings(
        {
            "unit": {"name": "metrics-unit", "role": "hub"},
            "http": {"listen": f"{host}:0", "tls": False},
            "provisioning": {"mdns": False},
            "metrics": metrics,
        }
    )
    state = DaemonState.open(settings, tmp_path / "config.toml", tmp_path)
    app = build_app(state)
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    try:
        yield state, app, server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


def token(state: DaemonState, identity: str) -> str:
    key = state.unit.identity.signing_key
    return mint_access_token(key, state.unit.identity.account_sid, identity, room="standup")


async def scrape(url: str, headers: dict[str, str] | None = None) -> tuple[Samples, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, text


async def all_forwarded(app: web.Application, tracks: int, subscribers: int) -> None:
    """Until ``tracks`` tracks are each forwarded to ``subscribers`` subscribers."""
    while True:
        stats = track_stats(app).tracks.values()
        flowing = [
            t for t in stats if sum(s.packets_sent > 0 for s in t.subscribers) >= subscribers
        ]
        if len(flowing) >= tracks:
            return
        await asyncio.sleep(0.2)


def total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


async def test_metrics_follow_a_three_party_call(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as (state, app, port):
        url = f"http://127.0.0.1:{port}/metrics"
        ws = f"ws://127.0.0.1:{port}/v1/signaling"
        idle, _ = await scrape(url)
        assert total(idle, "edge_rooms") == 0
        assert total(idle, "edge_event_loop_lag_seconds") >= 0
        assert ("edge_recordings_bytes", frozenset()) in idle
        assert total(idle, "edge_process_resident_memory_bytes") > 0

        rooms: list[Room] = []
        try:
            for name in ("alice", "bob", "carol"):
                room = await connect(ws, token(state, name))
                rooms.append(room)
                await room.publish_track(PatternVideoTrack(320, 240), "camera")
                await room.publish_track(ToneAudioTrack(), "mic")
            # Each of the three receives the two others' two tracks.
            await asyncio.wait_for(all_forwarded(app, tracks=6, subscribers=2), 40)
            room_sid = rooms[0].sid
            await asyncio.sleep(1.5)  # the first receiver reports
            first, _ = await scrape(url)
            await asyncio.sleep(2.5)
            second, text = await scrape(url)
            # each participant's estimates: its uplink on its tracks, its downlink where it
            # subscribes (the Python client's video carries REMB; its reports give the rest)
            stats = track_stats(app).tracks.values()
            video = [t for t in stats if t.kind == "video"]
            assert all(t.available_incoming_bps for t in video)
            assert all(s.available_outgoing_bps for t in stats for s in t.subscribers)
            # A track that ends takes nothing back from the counters.
            alice_camera = next(iter(rooms[0].local_tracks.values()))
            rooms[0].unpublish_track(alice_camera)
            while len(track_stats(app).tracks) > 5:
                await asyncio.sleep(0.1)
            third, _ = await scrape(url)
        finally:
            for room in rooms:
                await room.close()

    assert total(second, "edge_rooms") == 1
    assert total(second, "edge_participants", room_sid=room_sid) == 3
    for kind in ("audio", "video"):
        assert total(second, "edge_published_tracks", room_sid=room_sid, kind=kind) == 3
        assert total(second, "edge_subscribed_tracks", room_sid=room_sid, kind=kind) == 6
        for counter in (
            "edge_received_bytes_total",
            "edge_received_packets_total",
            "edge_sent_bytes_total",
            "edge_sent_packets_total",
        ):
            before = total(first, counter, room_sid=room_sid, kind=kind)
            after = total(second, counter, room_sid=room_sid, kind=kind)
            assert 0 < before < after, (counter, kind, before, after)
    # Forwarding to two subscribers sends about twice what one publisher sends.
    received = total(second, "edge_received_packets_total", room_sid=room_sid)
    sent = total(second, "edge_sent_packets_total", room_sid=room_sid)
    assert 1.5 * received < sent < 2.5 * received
    # The subscribers' receiver reports (aiortc sends them every second or so).
    loss_key = frozenset({("room_sid", room_sid), ("kind", "video")})
    assert 0 <= second[("edge_subscriber_loss_ratio", loss_key)] < 0.5
    assert total(second, "edge_subscriber_jitter_seconds", room_sid=room_sid, kind="video") >= 0
    assert 0 < total(second, "edge_subscriber_rtt_seconds", room_sid=room_sid) < 1
    assert 0 <= second[("edge_publisher_packets_lost", loss_key)] < 50
    assert 0 < second[("edge_publisher_jitter_seconds", loss_key)] < 0.5
    assert total(second, "edge_callback_outbox") == 0
    assert 50_000 <= second[("edge_available_outgoing_bps", loss_key)] < 100_000_000
    assert 0 < second[("edge_available_incoming_bps", loss_key)] < 100_000_000
    assert total(third, "edge_published_tracks", kind="video") == 2
    for counter in ("edge_received_bytes_total", "edge_sent_packets_total"):
        assert total(third, counter, kind="video") >= total(second, counter, kind="video")
    # Room SIDs only: no identity, no room name in the exposition.
    for secret in ("alice", "bob", "carol", "standup"):
        assert secret not in text


async def test_names_label_only_when_configured(tmp_path: Path) -> None:
    async with running_hub(tmp_path, label_names=True) as (state, _app, port):
        room = await connect(f"ws://127.0.0.1:{port}/v1/signaling", token(state, "alice"))
        try:
            samples, _ = await scrape(f"http://127.0.0.1:{port}/metrics")
        finally:
            await room.close()
    assert total(samples, "edge_participants", room_sid=room.sid, room_name="standup") == 1


async def metrics_from(app: web.Application, remote: str, auth: str | None = None) -> int:
    """The daemon's /metrics handler's answer to a request from ``remote``."""
    headers = {"Authorization": auth} if auth else {}
    request = make_mocked_request("GET", "/metrics", headers=headers, app=app)
    response = await handle_metrics(request.clone(remote=remote))
    return response.status


async def test_other_hosts_need_the_token(tmp_path: Path) -> None:
    async with running_hub(tmp_path, token="s3cret-token") as (_state, app, _port):
        assert await metrics_from(app, "127.0.0.1") == 200
        assert await metrics_from(app, "::1") == 200
        assert await metrics_from(app, "192.0.2.7") == 401
        assert await metrics_from(app, "192.0.2.7", "Bearer wrong") == 401
        assert await metrics_from(app, "192.0.2.7", "Basic czNjcmV0LXRva2Vu") == 401
        assert await metrics_from(app, "192.0.2.7", "Bearer s3cret-token") == 200
        assert await metrics_from(app, "::ffff:192.0.2.7", "Bearer s3cret-token") == 200


async def test_without_a_token_only_this_machine(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as (_state, app, _port):
        assert await metrics_from(app, "127.0.0.1") == 200
        assert await metrics_from(app, "192.0.2.7") == 403
        assert await metrics_from(app, "192.0.2.7", "Bearer ") == 403


NS = "edge-metrics"
HOST_IF, NS_IF = "va-edgemet", "vb-edgemet"
HOST_IP, NS_IP = "10.201.9.1", "10.201.9.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def other_host() -> Iterator[str]:
    """A host of the test's own: a network namespace behind a veth pair (traffic stays here)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for a network namespace")
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)
    try:
        _ip("netns", "add", NS)
        _ip("link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
        _ip("link", "set", NS_IF, "netns", NS)
        _ip("addr", "add", f"{HOST_IP}/24", "dev", HOST_IF)
        _ip("link", "set", HOST_IF, "up")
        _ip("-n", NS, "addr", "add", f"{NS_IP}/24", "dev", NS_IF)
        _ip("-n", NS, "link", "set", NS_IF, "up")
        _ip("-n", NS, "link", "set", "lo", "up")
        yield NS
    finally:
        subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)


_FETCH = """
import sys, urllib.request, urllib.error
headers = dict([sys.argv[2].split(": ", 1)]) if len(sys.argv) > 2 else {}
req = urllib.request.Request(sys.argv[1], headers=headers)
try:
    with urllib.request.urlopen(req, timeout=10) as resp:
        print(resp.status, "edge_rooms" in resp.read().decode())
except urllib.error.HTTPError as err:
    print(err.code, "edge_rooms" in err.read().decode())
"""


async def _fetch_from(ns: str, url: str, *header: str) -> tuple[int, bool]:
    proc = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        ns,
        sys.executable,
        "-c",
        _FETCH,
        url,
        *header,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    status, leaked = out.decode().split()
    return int(status), leaked == "True"


async def test_refused_over_a_real_socket_from_another_host(
    tmp_path: Path, other_host: str
) -> None:
    async with running_hub(tmp_path, host=HOST_IP, token="s3cret-token") as (_s, _app, port):
        url = f"http://{HOST_IP}:{port}/metrics"
        assert await _fetch_from(other_host, url) == (401, False)
        assert await _fetch_from(other_host, url, "Authorization: Bearer s3cret-token") == (
            200,
            True,
        )
