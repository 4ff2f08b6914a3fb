"""Small helpers every REST module uses: the context, the base URL, JSON responses."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from ..context import SFU_CONTEXT, SfuContext
from ..errors import InvalidParameter


def context(request: web.Request) -> SfuContext:
    """The SFU context of the application serving ``request``."""
    return request.config_dict[SFU_CONTEXT]


def base_url(request: web.Request) -> str:
    """Where resource URLs start: the configured public URL, else the address and port the
    request arrived at (never the ``Host`` header: a client could put anything there, and a
    URL in a response would then point wherever it liked).
    """
    configured = context(request).settings.public_base_url
    if configured:
        return configured.rstrip("/")
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:  # a Unix socket, or closed
        return f"{request.scheme}://localhost"
    host, port = str(sockname[0]), int(sockname[1])
    if ":" in host:
        host = f"[{host.split('%', 1)[0]}]"  # IPv6, without a zone index
    return f"{request.scheme}://{host}:{port}"


def refuse_own_endpoint(request: web.Request, url: str, name: str) -> None:
    """Refuse ``url`` when it points at this unit's own HTTP server (its REST API, admin
    pages, signaling): a status callback there would have the unit post signed requests to
    itself. Other hosts and other ports of this machine (a hub on the same box or the LAN)
    stay allowed. Only literal addresses and names known without DNS are compared, so a
    request never waits on a lookup.
    """
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidParameter(f"{name} has an invalid port") from exc
    host = (parts.hostname or "").rstrip(".").lower()
    own_hosts, own_ports = _own_origin(request)
    if port in own_ports and (host in own_hosts or _is_local_address(host)):
        raise InvalidParameter(f"{name} must not point at this unit's own API or admin pages")


def _own_origin(request: web.Request) -> tuple[set[str], set[int]]:
    hosts = {"localhost", request.url.host or "", socket.gethostname().lower()}
    hosts |= {f"{h}.local" for h in list(hosts) if h and not h.endswith(".local")}
    ports: set[int] = set()
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        hosts.add(str(sockname[0]).split("%", 1)[0].lower())
        ports.add(int(sockname[1]))
    configured = context(request).settings.public_base_url
    if configured:
        public = urlsplit(configured)
        hosts.add((public.hostname or "").lower())
        with contextlib.suppress(ValueError):
            ports.add(public.port or (443 if public.scheme == "https" else 80))
    return hosts - {""}, ports


def _is_local_address(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host.endswith(".localhost")
    return address.is_loopback or address.is_unspecified


def json_response(body: Any, status: int = 200) -> web.Response:
    """A compact JSON response."""
    return web.Response(
        text=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )
