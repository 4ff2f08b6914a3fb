"""``edge-appliance run``: one process hosting the SFU, REST API, admin page and the role.

An aiohttp ``AppRunner`` owns the daemon. Each subsystem is a cleanup context appended in
dependency order (``appliance.app.build_app``), so start-up runs top to bottom and teardown
runs in reverse. systemd hears ``READY=1`` only once HTTP listens and the hardware is up, and
``STOPPING=1`` as soon as SIGTERM arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import signal
import sys
from pathlib import Path

from aiohttp import web

from .app import build_app
from .config import ConfigError, load_config, parse_settings, save_config
from .confinement import confine
from .data_lock import DataDirBusy, lock_data_dir
from .mapping import listen_address
from .net_limits import AcceptErrorLimiter, ConnectionGuard, ConnectionLimits, GuardedTCPSite
from .settings import Settings
from .state import DaemonState

log = logging.getLogger("edge_appliance")

#: Everything must be down within systemd's TimeoutStopSec (20 s in the shipped unit).
SHUTDOWN_TIMEOUT = 15.0
EX_TEMPFAIL = 75
#: How long open HTTP requests may finish after SIGTERM before they are cut.
GRACE_PERIOD = 3.0


def dev_settings() -> Settings:
    """A config for trying the unit on a laptop: localhost over HTTP, mock pins."""
    return parse_settings(
        {
            "unit": {"name": "edge-dev", "role": "kiosk"},
            "http": {"listen": "127.0.0.1:8080", "tls": False},
            "gpio": {"pin_factory": "mock"},
            "provisioning": {"mdns": False},
        }
    )


def run_daemon(args: argparse.Namespace) -> int:
    """Lock the data directory, load the config, then serve until SIGTERM/SIGINT.

    Returns the exit status."""
    try:
        lock = lock_data_dir(args.data_dir)  # before anything in it is read or written
    except DataDirBusy as exc:
        print(f"edge-appliance: {exc}", file=sys.stderr)
        return 1
    with lock:
        return _run_locked(args)


def _run_locked(args: argparse.Namespace) -> int:
    config_path: Path = args.config
    if args.dev_config and not config_path.exists():
        save_config(config_path, dev_settings())
        print(f"edge-appliance: wrote a development config to {config_path}", file=sys.stderr)
    try:
        settings = load_config(config_path)
    except ConfigError as exc:
        print(f"edge-appliance: {exc}", file=sys.stderr)
        return 2
    if args.listen:
        settings.http.listen = args.listen
        settings = parse_settings(_as_dict(settings), source="--listen")
    settings = confine(settings)
    state = DaemonState.open(settings, config_path, args.data_dir)
    _tell_the_cli(config_path, args.data_dir)
    code = asyncio.run(serve(state))
    if state.restart_requested:
        return restart()
    return code


def _tell_the_cli(config_path: Path, data_dir: Path) -> None:
    """Print how to point the other commands at this unit, unless it uses the default paths.

    Without it, a command typed in another shell would act on the default paths: another
    unit, with its own identity, keys and claim code.
    """
    from .config import CONFIG_ENV, DATA_DIR_ENV, DEFAULT_CONFIG, DEFAULT_DATA_DIR

    config, data = config_path.absolute(), data_dir.absolute()
    if config == DEFAULT_CONFIG and data == DEFAULT_DATA_DIR:
        return
    print(
        "edge-appliance: to use the other commands on this unit, in another shell:\n"
        f"  export {CONFIG_ENV}={shlex.quote(str(config))}\n"
        f"  export {DATA_DIR_ENV}={shlex.quote(str(data))}",
        file=sys.stderr,
        flush=True,
    )


def restart() -> int:
    """Start again with the same arguments (after the admin page asked for it).

    Under systemd the service manager restarts us (the unit has ``Restart=on-failure``), so
    exit with EX_TEMPFAIL; anywhere else replace this process with a fresh one.
    """
    if os.environ.get("NOTIFY_SOCKET"):
        log.info("restart requested: exiting with status %d for systemd to restart", EX_TEMPFAIL)
        return EX_TEMPFAIL
    log.info("restart requested: starting again")
    os.execv(sys.executable, [sys.executable, "-m", "appliance.cli", *sys.argv[1:]])  # noqa: S606


def _as_dict(settings: Settings) -> dict[str, object]:
    from .config import settings_to_dict

    return settings_to_dict(settings)


async def serve(state: DaemonState) -> int:
    """Start every subsystem, announce readiness, wait for a stop signal, tear down."""
    from .service_manager import configure_logging

    configure_logging()
    # The admin status page's log viewer; removed again so a restart in-process adds one.
    logging.getLogger().addHandler(state.log_buffer)
    try:
        return await _serve(state)
    finally:
        logging.getLogger().removeHandler(state.log_buffer)


async def _serve(state: DaemonState) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    state.request_stop = stop.set
    limits = ConnectionLimits()
    AcceptErrorLimiter(loop, limits.accept_log_interval).install()
    guard = ConnectionGuard(limits)
    app = build_app(state)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, **limits.handler_args())
    await runner.setup()  # runs every cleanup context's start-up, in order
    try:
        host, port = listen_address(state.settings.http.listen)
        site = GuardedTCPSite(
            runner,
            host,
            port,
            guard=guard,
            ssl_context=state.ssl_context,
            reuse_address=True,
            shutdown_timeout=GRACE_PERIOD,  # a held-open response must not eat TimeoutStopSec
        )
        await site.start()
        state.bound_port = _bound_port(site) or port
        await _redirect_site(runner, state, host, guard)
        state.announce_ready()
        await stop.wait()
    finally:
        state.announce_stopping()
        try:
            await asyncio.wait_for(runner.cleanup(), SHUTDOWN_TIMEOUT)
        except TimeoutError:
            log.error("shutdown took longer than %.0f s; exiting anyway", SHUTDOWN_TIMEOUT)
    return state.exit_code


async def _redirect_site(
    runner: web.AppRunner, state: DaemonState, host: str, guard: ConnectionGuard
) -> None:
    """Plain HTTP on ``http.redirect_port``: the same application, whose redirect middleware
    (see ``appliance.admin``) sends every client but this machine's own to HTTPS."""
    port = state.settings.http.redirect_port
    if state.ssl_context is not None and port != 0:
        site = GuardedTCPSite(
            runner, host, port, guard=guard, reuse_address=True, shutdown_timeout=GRACE_PERIOD
        )
        await site.start()


def _bound_port(site: web.TCPSite) -> int | None:
    server = site._server  # aiohttp keeps the asyncio server here; the only way to learn port 0
    sockets = getattr(server, "sockets", None) or []
    for sock in sockets:
        return int(sock.getsockname()[1])
    return None
