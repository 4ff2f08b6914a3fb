"""Fixtures shared by the send-path tests of this package."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A non-blocking UDP sender and a receiver (2 s timeout) on loopback; IPv4 unless the
    test parametrizes it indirectly with ``socket.AF_INET6``."""
    family = getattr(request, "param", socket.AF_INET)
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    sender = socket.socket(family, socket.SOCK_DGRAM)
    receiver = socket.socket(family, socket.SOCK_DGRAM)
    sender.bind((host, 0))
    receiver.bind((host, 0))
    receiver.settimeout(2)
    sender.setblocking(False)
    try:
        yield sender, receiver
    finally:
        sender.close()
        receiver.close()
