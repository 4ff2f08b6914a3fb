"""A daemon told to stay on loopback does so, on a real socket, whatever its listen address."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from provisioning.mdns import guess_addresses
from tests.support.daemon import running_daemon


def test_a_confined_daemon_with_a_wildcard_listen_is_not_reachable_from_the_lan(
    tmp_path: Path,
) -> None:
    lan = [a for a in guess_addresses() if not a.startswith("127.")]
    if not lan:
        pytest.skip("this machine has no non-loopback address")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config: dict[str, dict[str, object]] = {
        "http": {"listen": f"0.0.0.0:{port}"},
        "provisioning": {"mdns": True},
    }
    with running_daemon(tmp_path, config) as daemon:
        assert daemon.wait_ready().endswith(f":{port}")
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((lan[0], port), timeout=5).close()
