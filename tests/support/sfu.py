"""A real SFU application on an ephemeral loopback port.

``running_sfu`` serves it on a real socket (signaling, browser tests); ``start_unit`` serves it
through aiohttp's test client with an API key (REST tests).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edge_sfu.client import Room, connect
from edge_sfu.context import SfuContext, SfuSettings
from edge_sfu.identity import UnitIdentity, load_or_create_identity
from edge_sfu.keys import ApiKey, KeyStore
from edge_sfu.media import Consumer, MediaSettings, Transport
from edge_sfu.media.allocation import RATE_WINDOW_S, layer_options
from edge_sfu.recording.disk import RecordingSettings
from edge_sfu.rooms import RoomDefaults
from edge_sfu.server import create_sfu_app
from edge_sfu.signaling import (
    MEDIA_SETTINGS,
    SIGNALING,
    SIGNALING_SETTINGS,
    SignalingService,
    SignalingSettings,
)
from edge_sfu.signaling.whip import WHIP_SETTINGS, WhipSettings
from edge_sfu.tokens import mint_access_token

#: Short timers so reconnect-window tests take seconds, not half a minute.
FAST = SignalingSettings(
    heartbeat_interval=0.5,
    heartbeat_timeout=2.0,
    reconnect_window=3.0,
    join_timeout=3.0,
    answer_timeout=3.0,
)


@dataclass
class RunningSfu:
    """What a test needs: URLs, the app's services, and a token minter."""

    app: web.Application
    port: int
    identity: UnitIdentity
    context: SfuContext
    host: str = "127.0.0.1"

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1/signaling"

    @property
    def signaling(self) -> SignalingService:
        return self.app[SIGNALING]

    def token(self, identity: str, room: str | None = "room1", ttl: int = 600) -> str:
        return mint_access_token(
            self.identity.signing_key, self.identity.account_sid, identity, room=room, ttl=ttl
        )


@contextlib.asynccontextmanager
async def running_sfu(
    data_dir: Path,
    settings: SignalingSettings | None = None,
    *,
    host: str = "127.0.0.1",
    media: MediaSettings | None = None,
    whip: WhipSettings | None = None,
) -> AsyncIterator[RunningSfu]:
    """Start the SFU app on ``host`` (loopback by default), port 0; stop it (bounded) on exit.

    ``media`` replaces the forwarding engine's settings (for example the addresses its
    candidates use, when a test has its own network namespace); ``whip`` the WHIP/WHEP
    sessions' timers.
    """
    identity = load_or_create_identity(data_dir)
    keys = KeyStore(data_dir, builtin=identity.signing_key)
    context = SfuContext.open(data_dir, identity, keys)
    app = create_sfu_app(context)
    if settings is not None:
        app[SIGNALING_SETTINGS] = settings
    if media is not None:
        app[MEDIA_SETTINGS] = media
    if whip is not None:
        app[WHIP_SETTINGS] = whip
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    port = server.sockets[0].getsockname()[1]
    try:
        yield RunningSfu(app, port, identity, context, host)
    finally:
        await runner.cleanup()


@dataclass
class Unit:
    """One running unit, as the tests see it."""

    data_dir: Path
    identity: UnitIdentity
    key: ApiKey
    context: SfuContext
    client: TestClient

    @property
    def auth(self) -> dict[str, str]:
        raw = f"{self.key.sid}:{self.key.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    @property
    def base(self) -> str:
        return str(self.client.make_url("")).rstrip("/")


async def start_unit(
    data_dir: Path,
    defaults: RoomDefaults | None = None,
    settings: SfuSettings | None = None,
    recording: RecordingSettings | None = None,
) -> Unit:
    """Start a unit on ``data_dir`` (reusing its identity and keys if present)."""
    identity = load_or_create_identity(data_dir)
    keys = KeyStore(data_dir, builtin=identity.signing_key)
    key = keys.list()[0] if keys.list() else keys.create("tests")
    context = SfuContext.open(
        data_dir,
        identity,
        keys,
        defaults or RoomDefaults(max_participants=3),
        settings or SfuSettings(sweep_interval=0.05, callback_base_delay=0.05),
        recording,
    )
    server = TestServer(create_sfu_app(context), host="127.0.0.1")
    # A failing test may hold a response open: do not wait aiohttp's default 60 s for it.
    await server.start_server(shutdown_timeout=2.0)
    client = TestClient(server)
    await client.start_server()
    return Unit(data_dir, identity, key, context, client)


async def join(sfu: RunningSfu, clients: list[Room], *identities: str) -> list[Room]:
    """One client per identity connected to the SFU's room1, in order.

    Each is appended to ``clients`` (the fixture that closes them after the test) as soon as
    it is connected.
    """
    for identity in identities:
        clients.append(await connect(sfu.ws_url, sfu.token(identity)))
    return clients[-len(identities) :]


def set_downlink(transport: Transport, bps: int | None) -> None:
    """Stand in for the network: the allocation of ``transport``'s downlink sees ``bps``
    (None: unlimited) as the estimate from now on, and runs as on a new estimate. The first
    time, a high figure comes before it, with loss: an estimate binds once it has come down
    while packets were lost."""
    allocation = transport.allocation
    callback = transport.on_estimate
    assert callback is not None
    if not allocation.congested and bps is not None:
        allocation.congestion_sustain_s = 0.0
        allocation.loss = lambda: 0.1
        allocation.available_bps = lambda: 10 * bps
        callback()
    allocation.available_bps = lambda: bps
    callback()


async def settled_costs(consumers: Mapping[str, Consumer], timeout: float = 30.0) -> dict[str, int]:
    """What each consumer's lowest layer costs once its rate window has filled: the highest
    of the measurements over one window, so a budget built on it still holds when the live
    median moves. Only measurements count (a layer not measured yet has a default cost),
    each over a full window from its first."""
    costs: dict[str, int] = {}
    since: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        for sid, consumer in consumers.items():
            measured = layer_options(consumer.producer, now)[0].bitrate_bps
            if measured:
                since.setdefault(sid, now)
                costs[sid] = max(measured, costs.get(sid, 0))
        if len(since) == len(consumers) and all(
            now - t >= RATE_WINDOW_S + 1.0 for t in since.values()
        ):
            break
        assert now < deadline, f"costs not measured within {timeout} s: {costs}"
        await asyncio.sleep(0.25)
    return costs


def describe_allocation(transport: Transport) -> str:
    """A subscriber's downlink as the allocation sees it now, for a failing test's output:
    the estimate, whether it binds, and per consumer its costs, priority and allocation."""
    allocation = transport.allocation
    now = time.monotonic()
    lines = [
        f"estimate {allocation.available_bps()} congested {allocation.congested}"
        f" last {allocation.last_available_bps}"
    ]
    for status in allocation.status():
        consumer = transport.consumers.get(status.consumer_id)
        costs = (
            [o.cost for o in layer_options(consumer.producer, now)]
            if consumer is not None and status.kind == "video"
            else []
        )
        lines.append(f"  {status} costs {costs}")
    return "\n".join(lines)


def _room_transports(sfu: RunningSfu, room_name: str) -> list[tuple[str, Transport]] | None:
    """(identity, transport) of every participant in the live room ``room_name``, or None."""
    room = sfu.signaling.rooms.live_room_by_name(room_name)
    router = None if room is None else sfu.signaling.routers.get(room.sid)
    if room is None or router is None:
        return None
    names = {p.sid: p.identity for p in room.participants.values()}
    return [(names.get(t.participant_id, t.participant_id), t) for t in router.transports.values()]


def describe_downlinks(sfu: RunningSfu, room_name: str = "room1") -> str:
    """Every participant's downlink in ``room_name`` as the SFU sees it now, for a failing
    browser test's output: the allocation (``describe_allocation``), what probes showed and
    how many got through, failed or were taken back, and the last one's verdict."""
    transports = _room_transports(sfu, room_name)
    if transports is None:
        return f"no live room {room_name!r}"
    lines = []
    for identity, transport in transports:
        downlink = transport.bandwidth.downlink
        probes = downlink.probes
        lines.append(
            f"{identity}: downlink {downlink.estimate_bps // 1000}k proven "
            f"{downlink.proven_bps // 1000}k loss {downlink.loss:.2f} {downlink.usage.value} "
            f"timeouts {downlink.feedback_timeouts} "
            f"feedback {transport.bandwidth.feedback_received} "
            f"probes ok {probes.succeeded} failed {probes.failed} refuted {probes.refuted} "
            f"undersent {probes.undersent} "
            f"last: {downlink.last_probe or '-'}"
        )
        lines.append("  " + describe_allocation(transport).replace("\n", "\n  "))
    return "\n".join(lines)


def downlinks_now(sfu: RunningSfu, room_name: str = "room1") -> str:
    """Every participant's downlink in one short line, for a trace taken every second: the
    estimate, whether it binds (``C``), the loss the allocation sees, the detector's verdict,
    probes ok/failed, and each video consumer's layer now, the one allowed, and why."""
    transports = _room_transports(sfu, room_name)
    if transports is None:
        return f"no live room {room_name!r}"
    parts = []
    for identity, transport in sorted(transports, key=lambda pair: pair[0]):
        downlink = transport.bandwidth.downlink
        estimate = transport.estimate
        loss = "-" if estimate is None or estimate.loss is None else f"{estimate.loss:.2f}"
        layers = ",".join(
            f"{s.current_layer}/{s.allowed_layer}{'-off' if s.switched_off else ''}:{s.reason[:7]}"
            for s in transport.allocation.status()
            if s.kind == "video"
        )
        binds = " C" if transport.allocation.congested else ""
        probes = downlink.probes
        parts.append(
            f"{identity} {downlink.estimate_bps // 1000}k{binds} l{loss} "
            f"{downlink.usage.value[:4]} #{probes.succeeded}/{probes.failed} [{layers}]"
        )
    return " | ".join(parts)
