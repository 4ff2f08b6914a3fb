"""Builds the daemon's aiohttp application: every subsystem as a cleanup context, in order.

Order of start-up (teardown runs in reverse):

1. the SFU's own contexts (history store, rooms, status callbacks, signaling);
2. the service manager (systemd notifications and the loop-driven watchdog), and
   ``/metrics`` with its event-loop probe, see ``appliance.metrics``;
3. the admin side (provisioning pages, mDNS, certificates), see ``appliance.admin``, and the
   landing page at ``/``, see ``appliance.landing``;
4. the role (kiosk: hardware and the call state machine), see ``appliance.roles``;
5. the local control socket used by ``edge-appliance press``;
6. the heap trim (``appliance.heap``).

What the parts share is ``appliance.state.DaemonState``; how the config becomes each
subsystem's settings is ``appliance.mapping``. This module is the only one that knows the
order; nothing in the package imports it but the daemon.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from edge_sfu.context import SfuContext
from edge_sfu.server import create_sfu_app
from edge_sfu.signaling import MEDIA_SETTINGS
from edge_sfu.signaling.whip import WHIP_SETTINGS
from edge_sfu.stats import track_stats

from .admin import setup_admin
from .control.protocol import BadCommand, ControlCommand, PressCommand, default_socket_path
from .control.server import ControlServer
from .heap import trim_heap_periodically
from .landing import setup_landing
from .mapping import (
    media_settings,
    recording_settings,
    room_defaults,
    sfu_settings,
    whip_settings,
)
from .metrics import setup_metrics
from .roles import admin_pages, setup_role
from .room_log import log_room_event
from .service_manager import ServiceNotifier
from .state import DAEMON, DaemonState
from .status import status_summary
from .track_rates import TrackRates


def build_app(state: DaemonState) -> web.Application:
    """The daemon's application with every subsystem registered in start-up order."""
    unit = state.unit
    state.sfu = SfuContext.open(
        unit.data_dir,
        unit.identity,
        unit.keys,
        room_defaults(state.settings),
        sfu_settings(state.settings),
        recording_settings(state.settings),
    )
    state.sfu.rooms.add_listener(log_room_event)
    app = create_sfu_app(state.sfu)
    app[DAEMON] = state
    app[MEDIA_SETTINGS] = media_settings(state.settings)
    app[WHIP_SETTINGS] = whip_settings(state.settings)
    state.track_rates = TrackRates(functools.partial(track_stats, app))
    app.cleanup_ctx.append(_service_manager)
    setup_metrics(app, state)
    setup_admin(app, state, admin_pages(state))
    setup_landing(app)
    setup_role(app, state)
    app.cleanup_ctx.append(_control_socket)
    app.cleanup_ctx.append(_heap_trim)
    return app


async def _service_manager(app: web.Application) -> AsyncIterator[None]:
    status = app[DAEMON].status
    status.notifier = ServiceNotifier()
    await status.notifier.start()
    try:
        yield
    finally:
        await status.notifier.close()


async def _heap_trim(_app: web.Application) -> AsyncIterator[None]:
    async for _ in trim_heap_periodically():
        yield


async def _control_socket(app: web.Application) -> AsyncIterator[None]:
    state = app[DAEMON]

    async def handle(command: ControlCommand) -> Mapping[str, Any]:
        if isinstance(command, PressCommand):
            if state.press_handler is None:
                raise BadCommand(f"this unit's role ({state.settings.unit.role}) has no buttons")
            acted = state.press_handler(command.button, command.long)
            return {
                "pressed": command.button,
                "acted": acted,
                "state": state.status.role_state,
                "status": state.status.line,
            }
        return status_summary(state)

    server = ControlServer(default_socket_path(state.unit.data_dir), handle)
    await server.start()
    try:
        yield
    finally:
        await server.close()
