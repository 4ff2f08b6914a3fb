"""Builds the daemon's aiohttp application: every subsystem as a cleanup context, in order.

Order of start-up (teardown runs in reverse):

1. the SFU's own contexts (history store, rooms, status callbacks, signaling);
2. the service manager (systemd notifications and the loop-driven watchdog);
3. the role (kiosk: hardware and the call state machine), see ``appliance.roles``;
4. the local control socket used by ``edge-appliance press``.

``DaemonState`` is what the parts of the composition root share; it is stored in the
application under ``DAEMON``.
"""

from __future__ import annotations

import collections
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from edge_sfu.context import SfuContext, SfuSettings
from edge_sfu.identity import UnitIdentity, load_or_create_identity
from edge_sfu.keys import KeyStore
from edge_sfu.media import MediaSettings
from edge_sfu.media.settings import IceServer
from edge_sfu.rooms import RoomDefaults
from edge_sfu.server import create_sfu_app
from edge_sfu.signaling import MEDIA_SETTINGS, SIGNALING
from hardware.board import detect as detect_board

from . import __version__
from .control_socket import (
    BadCommand,
    ControlCommand,
    ControlServer,
    PressCommand,
    default_socket_path,
)
from .room_log import log_room_event
from .service_manager import ServiceNotifier
from .settings import Settings

log = logging.getLogger("edge_appliance")


@dataclass
class DaemonState:
    """What the composition root's parts share while the daemon runs."""

    settings: Settings
    config_path: Path
    data_dir: Path
    ssl_context: ssl.SSLContext | None = None
    bound_port: int = 0
    exit_code: int = 0
    request_stop: Callable[[], None] = lambda: None
    notifier: ServiceNotifier | None = None
    identity: UnitIdentity | None = None
    keys: KeyStore | None = None
    sfu: SfuContext | None = None
    #: Presses from the control socket, the status page or GPIO; set by the role.
    press_handler: Callable[[str, bool], None] | None = None
    #: One line describing what the unit is doing, for systemd's STATUS= and the pages.
    status_line: str = "starting"
    role_state: str = "starting"
    #: Parts that are missing or failed (camera, audio...), shown on the status page.
    degraded: dict[str, str] = field(default_factory=dict)
    last_errors: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=20)
    )
    started_at: float = field(default_factory=time.monotonic)
    #: Live media counters of the role (camera layers, speaker), for status and support.
    media_stats: Callable[[], dict[str, Any]] | None = None
    #: Called with the config keys just changed live by the admin page.
    live_hooks: list[Callable[[set[str]], None]] = field(default_factory=list)
    restart_requested: bool = False
    on_pi: bool = False
    #: Returns the signaling service once it runs (set by ``build_app``).
    signaling: Callable[[], Any] = lambda: None
    #: Bitrate estimates per track SID: (last bytes, last time, last kbps).
    _rates: dict[str, tuple[int, float, float]] = field(default_factory=dict)

    def record_error(self, message: str) -> None:
        """Remember an error for the status page (and log it)."""
        log.error("%s", message)
        self.last_errors.append(f"{time.strftime('%H:%M:%S')} {message}")

    def set_status(self, line: str) -> None:
        """Update the status line everywhere it is shown."""
        self.status_line = line
        if self.notifier is not None:
            self.notifier.status(line)

    def announce_ready(self) -> None:
        """HTTP listens and the hardware is up: tell systemd and the person at the console."""
        url = self.local_url()
        log.info("edge-appliance %s ready at %s", __version__, url)
        print(f"edge-appliance: open {url}/admin/  (join page: {url}/join/<room>)", flush=True)
        if self.notifier is not None:
            self.notifier.ready(self.status_line)

    def announce_stopping(self) -> None:
        """SIGTERM arrived: tell systemd before the graceful shutdown begins."""
        log.info("stopping")
        if self.notifier is not None:
            self.notifier.stopping("stopping: leaving rooms")

    def base_url(self) -> str:
        """The URL other people use to reach this unit (links, invites)."""
        return public_base_url(self.settings, self.bound_port, self.ssl_context is not None)

    def track_bitrate_kbps(self, track_sid: str) -> float:
        """Received bitrate of a published track since the last call (the status page polls)."""
        producer = self._producer(track_sid)
        if producer is None:
            self._rates.pop(track_sid, None)
            return 0.0
        now = time.monotonic()
        last_bytes, last_at, last_kbps = self._rates.get(
            track_sid, (producer.bytes_received, now, 0.0)
        )
        elapsed = now - last_at
        kbps = last_kbps
        if elapsed >= 0.5:
            kbps = (producer.bytes_received - last_bytes) * 8 / elapsed / 1000
            last_bytes, last_at = producer.bytes_received, now
        self._rates[track_sid] = (last_bytes, last_at, kbps)
        return float(round(kbps, 1))

    def _producer(self, track_sid: str) -> Any:
        service = self.signaling()
        if service is None:
            return None
        for router in service.routers.values():
            if track_sid in router.producers:
                return router.producers[track_sid]
        return None

    def local_url(self) -> str:
        """The URL that reaches this daemon from this machine."""
        host, _ = listen_address(self.settings.http.listen)
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 (a comparison, not a bind)
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.bound_port}"


DAEMON: web.AppKey[DaemonState] = web.AppKey("appliance.daemon", DaemonState)


def public_base_url(settings: Settings, port: int | None = None, tls: bool | None = None) -> str:
    """The URL people use to reach this unit: ``http.public_url``, else derived from where
    HTTP listens (a wildcard address becomes ``<unit name>.local``)."""
    if settings.http.public_url:
        return settings.http.public_url.rstrip("/")
    host, listen_port = listen_address(settings.http.listen)
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (a comparison, not a bind)
        host = f"{settings.unit.name}.local"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if (settings.http.tls if tls is None else tls) else "http"
    return f"{scheme}://{host}:{port or listen_port}"


def listen_address(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` too)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def room_defaults(settings: Settings) -> RoomDefaults:
    """The config's ``[rooms]`` table as the SFU's defaults for ad-hoc rooms."""
    r = settings.rooms
    return RoomDefaults(
        type=r.type,
        max_participants=r.max_participants,
        empty_room_timeout=r.empty_room_timeout,
        unused_room_timeout=r.unused_room_timeout,
        max_participant_duration=r.max_participant_duration,
        status_callback=r.status_callback or None,
        status_callback_method=r.status_callback_method,
    )


def media_settings(settings: Settings) -> MediaSettings:
    """The config's ``[media]`` table as the forwarding engine's settings."""
    m = settings.media
    servers = [IceServer(urls=(url,)) for url in m.stun_servers]
    servers += [
        IceServer(
            urls=(url,), username=m.turn_username or None, credential=m.turn_credential or None
        )
        for url in m.turn_servers
    ]
    ports = (m.udp_port_min, m.udp_port_max) if m.udp_port_min else None
    return MediaSettings(ice_servers=tuple(servers), udp_port_range=ports)


def build_app(state: DaemonState) -> web.Application:
    """The daemon's application with every subsystem registered in start-up order."""
    state.identity = load_or_create_identity(state.data_dir)
    state.keys = KeyStore(state.data_dir, builtin=state.identity.signing_key)
    public = state.settings.http.public_url or None
    state.sfu = SfuContext.open(
        state.data_dir,
        state.identity,
        state.keys,
        room_defaults(state.settings),
        SfuSettings(public_base_url=public),
    )
    state.sfu.rooms.add_listener(log_room_event)
    app = create_sfu_app(state.sfu)
    app[DAEMON] = state
    app[MEDIA_SETTINGS] = media_settings(state.settings)
    state.signaling = lambda: app.get(SIGNALING)
    state.on_pi = detect_board().is_pi
    app.cleanup_ctx.append(_service_manager)
    from .admin import setup_admin
    from .roles import setup_role

    setup_admin(app, state)
    setup_role(app, state)
    app.cleanup_ctx.append(_control_socket)
    return app


async def _service_manager(app: web.Application) -> AsyncIterator[None]:
    state = app[DAEMON]
    state.notifier = ServiceNotifier()
    await state.notifier.start()
    try:
        yield
    finally:
        await state.notifier.close()


async def _control_socket(app: web.Application) -> AsyncIterator[None]:
    state = app[DAEMON]

    async def handle(command: ControlCommand) -> Mapping[str, Any]:
        if isinstance(command, PressCommand):
            if state.press_handler is None:
                raise BadCommand(f"this unit's role ({state.settings.unit.role}) has no buttons")
            state.press_handler(command.button, command.long)
            return {"pressed": command.button, "state": state.role_state}
        return status_summary(state)

    server = ControlServer(default_socket_path(state.data_dir), handle)
    await server.start()
    try:
        yield
    finally:
        await server.close()


def status_summary(state: DaemonState) -> dict[str, Any]:
    """A JSON-able summary of the daemon, for the control socket and the status page."""
    rooms = [] if state.sfu is None else state.sfu.rooms.live_rooms()
    return {
        "version": __version__,
        "role": state.settings.unit.role,
        "state": state.role_state,
        "status": state.status_line,
        "uptime_s": round(time.monotonic() - state.started_at),
        "degraded": dict(state.degraded),
        "rooms": [
            {
                "sid": room.sid,
                "name": room.unique_name,
                "participants": [
                    {
                        "sid": p.sid,
                        "identity": p.identity,
                        "tracks": [
                            {
                                "sid": t.sid,
                                "kind": t.kind,
                                "name": t.name,
                                "enabled": t.enabled,
                                "bitrate_kbps": state.track_bitrate_kbps(t.sid),
                            }
                            for t in p.published.values()
                        ],
                    }
                    for p in room.participants.values()
                    if p.connected
                ],
            }
            for room in rooms
        ],
        "media": state.media_stats() if state.media_stats is not None else {},
        "last_errors": list(state.last_errors),
    }
