"""A bound datagram socket standing in for systemd's notify socket (one for every test).

It keeps reading in a thread: once about ten datagrams queue unread, the sender's
``sd_notify`` blocks while holding the GIL and the whole process freezes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.waiting import wait_for_sync


class NotifySocket:
    """Collects ``(arrival time, datagram)`` pairs; datagrams may hold several lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="notify-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def all(self) -> list[str]:
        """Every datagram so far, in order."""
        with self._lock:
            return [text for _, text in self.messages]

    def line_events(self) -> list[tuple[float, str]]:
        """Every ``KEY=VALUE`` line so far with its datagram's arrival time."""
        with self._lock:
            return [(at, line) for at, text in self.messages for line in text.splitlines()]

    def lines(self) -> list[str]:
        """Every ``KEY=VALUE`` line so far, in order."""
        return [line for _, line in self.line_events()]

    def pings(self) -> int:
        """Watchdog pings so far."""
        return sum(1 for line in self.lines() if line == "WATCHDOG=1")

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> bool:
        """Poll ``predicate()`` until it is true (True) or ``timeout`` passes (False)."""
        try:
            wait_for_sync(predicate, timeout=timeout, interval=0.02)
        except AssertionError:
            return False
        return True

    def wait_for_line(
        self, prefix: str, timeout: float, after: float = float("-inf")
    ) -> tuple[float, str]:
        """The first line starting with ``prefix`` (arrived after ``after``) and its arrival
        time; fails on timeout."""

        def found() -> list[tuple[float, str]]:
            return [
                item
                for item in self.line_events()
                if item[0] > after and item[1].startswith(prefix)
            ]

        try:
            return wait_for_sync(found, timeout=timeout, interval=0.02)[0]
        except AssertionError:
            raise AssertionError(f"no {prefix!r} within {timeout} s; got {self.lines()}") from None

    def close(self) -> None:
        """Stop reading and close the socket."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
