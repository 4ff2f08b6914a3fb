"""Keeping a daemon on loopback when the environment asks for it (the test suite does).

With ``EDGE_APPLIANCE_LOOPBACK_ONLY`` set, whatever configuration the daemon loads (its own,
or the defaults a factory reset leaves behind) it listens on 127.0.0.1 only, mDNS
announces on loopback only (``provisioning.mdns`` enforces that part itself), and the SFU
offers media candidates on 127.0.0.1 only (``appliance.mapping.media_settings``). The variable
is in the environment, not in the configuration, because a factory reset erases the
configuration and the restarted daemon inherits the environment.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import replace

from provisioning.mdns import LOOPBACK_ONLY_ENV, loopback_only

from .mapping import listen_address
from .settings import Settings

__all__ = ["LOOPBACK_ONLY_ENV", "confine", "confinement_problems", "loopback_only"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def confine(settings: Settings, env: Mapping[str, str] | None = None) -> Settings:
    """``settings`` listening on 127.0.0.1 (same port) if the environment asks for loopback."""
    if not loopback_only(env):
        return settings
    host, port = listen_address(settings.http.listen)
    if _is_loopback(host):
        return settings
    return replace(settings, http=replace(settings.http, listen=f"127.0.0.1:{port}"))


def confinement_problems(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """Why a daemon with ``settings`` and ``env`` could reach beyond loopback (empty: it cannot).

    A daemon started by a test must not: the harness asserts this list is empty.
    """
    problems = []
    confined = loopback_only(env)
    if not confined:
        problems.append(
            f"{LOOPBACK_ONLY_ENV} is not set: media candidates would use every interface,"
            " and a factory reset would restore mDNS"
        )
    host, _ = listen_address(confine(settings, env).http.listen)
    if not _is_loopback(host):
        problems.append(f"http.listen {settings.http.listen} is not on loopback")
    if settings.provisioning.mdns and not confined:
        problems.append("provisioning.mdns would announce on every interface")
    return problems
