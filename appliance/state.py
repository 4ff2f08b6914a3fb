"""What the composition root's parts share while the daemon runs.

Three parts, by how they change:

- ``UnitSetup``: fixed for the daemon's life (its files, identity, keys, board); frozen.
- ``Settings``: the config in force; the admin page replaces it as a whole when it applies
  live keys, so readers always see one consistent version.
- ``DaemonStatus``: what the unit is doing now, for systemd's ``STATUS=``, the status page
  and the control socket.

``DaemonState`` holds the three plus the handles the subsystems hand each other. It is
stored in the application under ``DAEMON``.
"""

from __future__ import annotations

import collections
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from edge_common.logbuffer import LogBuffer
from edge_sfu.context import SfuContext
from edge_sfu.identity import UnitIdentity, load_or_create_identity
from edge_sfu.keys import KeyStore
from hardware.board import detect as detect_board

from . import __version__
from .mapping import WILDCARD_HOSTS, listen_address, public_base_url
from .service_manager import ServiceNotifier
from .settings import Settings
from .track_rates import TrackRates

log = logging.getLogger("edge_appliance")


class OperatorTools(Protocol):
    """What the admin status page asks of a role with local media (the kiosk's devices)."""

    def mic_level(self) -> dict[str, Any]:
        """The microphone's latest peak, from the capture path (never a second capture)."""
        ...

    async def snapshot(self, image_format: str) -> bytes:
        """One still picture of the smallest running camera layer; ``LookupError`` if none."""
        ...

    def test_tone(self) -> float:
        """Play a short tone through the speaker path; its length in seconds.

        ``LookupError`` when there is no speaker.
        """
        ...


@dataclass(frozen=True)
class UnitSetup:
    """What the daemon is for its whole life: where its files are, who it is, on what."""

    config_path: Path
    data_dir: Path
    identity: UnitIdentity
    keys: KeyStore
    on_pi: bool

    @classmethod
    def open(cls, config_path: Path, data_dir: Path) -> UnitSetup:
        """Load (or create, on first start) the identity and keys in ``data_dir``."""
        identity = load_or_create_identity(data_dir)
        keys = KeyStore(data_dir, builtin=identity.signing_key)
        return cls(config_path, data_dir, identity, keys, detect_board().is_pi)


@dataclass
class DaemonStatus:
    """What the unit is doing, and what went wrong, as the pages and systemd show it."""

    #: One line describing what the unit is doing, for systemd's STATUS= and the pages.
    line: str = "starting"
    role_state: str = "starting"
    #: Whether the kiosk's microphone is muted in the call (always False outside one).
    muted: bool = False
    #: Parts that are missing or failed (camera, audio...), shown on the status page.
    degraded: dict[str, str] = field(default_factory=dict)
    last_errors: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=20)
    )
    started_at: float = field(default_factory=time.monotonic)
    #: Set while the service manager runs; told every change of ``line``.
    notifier: ServiceNotifier | None = None

    def record_error(self, message: str) -> None:
        """Remember an error for the status page (and log it)."""
        log.error("%s", message)
        self.last_errors.append(f"{time.strftime('%H:%M:%S')} {message}")

    def degrade(self, part: str, reason: str) -> None:
        """``part`` (camera, audio...) is missing or failed: show it, and why."""
        self.degraded[part] = reason
        self.record_error(f"{part}: {reason}")

    def set_line(self, line: str) -> None:
        """Update the status line everywhere it is shown."""
        self.line = line
        if self.notifier is not None:
            self.notifier.status(line)


@dataclass
class DaemonState:
    """The daemon's shared state: its setup, the settings in force, its status, its handles."""

    unit: UnitSetup
    settings: Settings
    status: DaemonStatus = field(default_factory=DaemonStatus)
    # Set by the server (``appliance.daemon``) and the admin side as they start.
    ssl_context: ssl.SSLContext | None = None
    bound_port: int = 0
    exit_code: int = 0
    request_stop: Callable[[], None] = lambda: None
    restart_requested: bool = False
    #: The SFU's rooms, keys and history (set by ``build_app``).
    sfu: SfuContext | None = None
    #: Received bitrate per track, from the SFU's counters (set by ``build_app``).
    track_rates: TrackRates = field(default_factory=TrackRates)
    #: Presses from the control socket, the status page or GPIO; set by the role.
    press_handler: Callable[[str, bool], bool] | None = None
    #: Live media counters of the role (camera layers, speaker), for status and support.
    media_stats: Callable[[], dict[str, Any]] | None = None
    #: What the role adds to the status summary (a field unit's link, a hub's field units).
    role_details: Callable[[], dict[str, Any]] | None = None
    #: Called with the config keys just changed live by the admin page.
    live_hooks: list[Callable[[set[str]], None]] = field(default_factory=list)
    #: The last log lines (redacted), for the admin status page; installed by ``serve``.
    log_buffer: LogBuffer = field(default_factory=LogBuffer)
    #: The kiosk's operator tools (snapshot, levels, test tone), set by the role.
    operator: OperatorTools | None = None

    @classmethod
    def open(cls, settings: Settings, config_path: Path, data_dir: Path) -> DaemonState:
        """The state of a daemon about to start with ``settings``."""
        return cls(UnitSetup.open(config_path, data_dir), settings)

    def announce_ready(self) -> None:
        """HTTP listens and the hardware is up: tell systemd and the person at the console."""
        url = self.local_url()
        log.info("edge-appliance %s ready at %s", __version__, url)
        print(f"edge-appliance: open {url}/admin/  (join page: {url}/join/<room>)", flush=True)
        if self.status.notifier is not None:
            self.status.notifier.ready(self.status.line)

    def announce_stopping(self) -> None:
        """SIGTERM arrived: tell systemd before the graceful shutdown begins."""
        log.info("stopping")
        if self.status.notifier is not None:
            self.status.notifier.stopping("stopping: leaving rooms")

    def base_url(self) -> str:
        """The URL other people use to reach this unit (links, invites)."""
        return public_base_url(self.settings, self.bound_port, self.ssl_context is not None)

    def local_url(self) -> str:
        """The URL that reaches this daemon from this machine."""
        host, _ = listen_address(self.settings.http.listen)
        if host in WILDCARD_HOSTS:
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.bound_port}"


DAEMON: web.AppKey[DaemonState] = web.AppKey("appliance.daemon", DaemonState)
