"""The admin side of the daemon: the provisioning pages, HTTPS certificates, mDNS discovery."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

import provisioning
from edge_common.lifecycle import TaskSet
from provisioning.mdns import Announcer, guess_addresses
from provisioning.names import unit_hostnames
from provisioning.redirect import https_redirect_middleware
from provisioning.tls import TlsManager

from . import __version__
from .admin_backend import ApplianceBackend, apply_live_settings
from .mapping import listen_address
from .state import DAEMON, DaemonState

log = logging.getLogger(__name__)
TLS: web.AppKey[TlsManager] = web.AppKey("appliance.tls", TlsManager)
#: How often certificates are checked for expiry and changed names/addresses (seconds).
TLS_CHECK_INTERVAL = 3600.0


def _addresses() -> list[str]:
    return [*guess_addresses(), "127.0.0.1"]


def setup_admin(
    app: web.Application,
    state: DaemonState,
    pages: Callable[[web.Application], None] | None = None,
) -> None:
    """Mount ``/admin/``, with the role's ``pages`` added to it; make or load the unit's
    certificate when HTTPS is on."""
    name = state.settings.unit.name
    tls: TlsManager | None = None
    if state.settings.http.tls:
        tls = TlsManager(state.unit.data_dir, unit_hostnames(name), _addresses(), name)
        state.ssl_context = tls.context
        app[TLS] = tls
        if state.settings.http.redirect_port:
            _, https_port = listen_address(state.settings.http.listen)
            app.middlewares.append(https_redirect_middleware(https_port))
    backend = ApplianceBackend(state, lambda keys: apply_live_settings(state, keys))
    provisioning.setup(
        app,
        backend,
        data_dir=state.unit.data_dir,
        unit_name=lambda: state.settings.unit.name,
        tls=tls,
        pages=pages,
    )
    app.cleanup_ctx.append(_discovery)


async def _discovery(app: web.Application) -> AsyncIterator[None]:
    """mDNS announcement (a live setting) and the certificate watcher."""
    state = app[DAEMON]
    s = state.settings
    _, port = listen_address(s.http.listen)
    announcer = Announcer(
        unit_name=s.unit.name,
        role=s.unit.role,
        version=__version__,
        port=port,
        addresses=guess_addresses(),
        enabled=s.provisioning.mdns and port != 0,
    )
    tasks = TaskSet("discovery")

    def on_live(keys: set[str]) -> None:
        if "provisioning.mdns" in keys:
            tasks.spawn(announcer.set_enabled(state.settings.provisioning.mdns), name="mdns-toggle")

    state.live_hooks.append(on_live)
    try:
        await announcer.start()
    except OSError as exc:  # no multicast-capable interface: the unit works without it
        state.status.record_error(f"mDNS: {exc}")
    tls = app.get(TLS)
    if tls is not None:
        names = lambda: (unit_hostnames(state.settings.unit.name), _addresses())  # noqa: E731
        tasks.spawn(tls.watch(names, TLS_CHECK_INTERVAL), name="tls-watch")
    try:
        yield
    finally:
        await tasks.close()
        await announcer.close()
