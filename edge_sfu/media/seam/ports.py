"""A UDP port range for ICE candidates, which aioice has no option for."""

from __future__ import annotations

import asyncio
import contextvars
import errno
import random
from typing import Any, cast

from aiortc.rtcdtlstransport import RTCDtlsTransport

# aioice binds every candidate socket with ``create_datagram_endpoint(local_addr=(address,
# 0))`` and has no option for a port range. While one of our ICE connections gathers, a
# context variable holds the range, and a wrapper around the running loop's
# ``create_datagram_endpoint`` turns port 0 into a free port from that range. Other code
# in the process (no range in its context) gets the loop's own behaviour.

_PORT_RANGE: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "edge_sfu_udp_port_range", default=None
)


def _install_port_range_hook(loop: asyncio.AbstractEventLoop) -> None:
    if getattr(loop, "_edge_sfu_port_hook", False):
        return
    original = loop.create_datagram_endpoint

    async def create_datagram_endpoint(
        protocol_factory: Any, local_addr: Any = None, remote_addr: Any = None, **kwargs: Any
    ) -> Any:
        port_range = _PORT_RANGE.get()
        if port_range is None or local_addr is None or local_addr[1] != 0 or remote_addr:
            return await original(
                protocol_factory, local_addr=local_addr, remote_addr=remote_addr, **kwargs
            )
        low, high = port_range
        count = high - low + 1
        first = random.randrange(count)
        for i in range(count):
            port = low + (first + i) % count
            try:
                return await original(protocol_factory, local_addr=(local_addr[0], port), **kwargs)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, f"no free UDP port in {low}-{high}")

    cast(Any, loop).create_datagram_endpoint = create_datagram_endpoint
    cast(Any, loop)._edge_sfu_port_hook = True


def restrict_ports(dtls: RTCDtlsTransport, port_range: tuple[int, int]) -> None:
    """Make this transport's ICE connection bind its sockets within ``port_range``.

    Call before it gathers candidates (before ``setLocalDescription``).
    """
    connection: Any = dtls.transport._connection
    if getattr(connection, "_edge_sfu_ports", None) == port_range:
        return
    original = getattr(connection, "_edge_sfu_gcc", None) or connection.get_component_candidates

    async def get_component_candidates(*args: Any, **kwargs: Any) -> Any:
        _install_port_range_hook(asyncio.get_running_loop())
        token = _PORT_RANGE.set(port_range)
        try:
            return await original(*args, **kwargs)
        finally:
            _PORT_RANGE.reset(token)

    connection._edge_sfu_gcc = original
    connection.get_component_candidates = get_component_candidates
    connection._edge_sfu_ports = port_range


def restrict_addresses(dtls: RTCDtlsTransport, addresses: tuple[str, ...]) -> None:
    """Make this transport's ICE connection gather host candidates on ``addresses`` only.

    aioice gathers on every address of every interface but loopback and hands that list to
    ``Connection.get_component_candidates(component, addresses)``; for this connection only,
    the list becomes ``addresses``. Call before it gathers (before ``setLocalDescription``).
    """
    connection: Any = dtls.transport._connection
    if getattr(connection, "_edge_sfu_addresses", None) == addresses:
        return
    inner = connection.get_component_candidates

    async def get_component_candidates(*args: Any, **kwargs: Any) -> Any:
        if "addresses" in kwargs:  # how aioice calls it
            kwargs["addresses"] = list(addresses)
        elif len(args) >= 2:
            args = (args[0], list(addresses), *args[2:])
        return await inner(*args, **kwargs)

    connection.get_component_candidates = get_component_candidates
    connection._edge_sfu_addresses = addresses
