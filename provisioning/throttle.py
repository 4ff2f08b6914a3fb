"""Per-client throttling of sign-in and claim attempts, with a lockout the page explains.

After ``max_failures`` wrong attempts from one address within ``window_s`` the address is
locked out; each further lockout doubles in length up to ``max_lockout_s``. A success clears
the address. The table is bounded so a flood of addresses cannot grow memory without end.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    failures: int = 0
    first_failure: float = 0.0
    locked_until: float = 0.0
    lockouts: int = 0


class Throttle:
    """Counts failures per client key (the remote address)."""

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window_s: float = 15 * 60,
        lockout_s: float = 60,
        max_lockout_s: float = 3600,
        max_clients: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self._window = window_s
        self._lockout = lockout_s
        self._max_lockout = max_lockout_s
        self._max_clients = max_clients
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def locked_for(self, client: str) -> float:
        """Seconds until ``client`` may try again (0 when it may now)."""
        entry = self._entries.get(client)
        if entry is None:
            return 0.0
        return max(0.0, entry.locked_until - self._clock())

    def remaining(self, client: str) -> int:
        """Attempts left before a lockout."""
        entry = self._entries.get(client)
        if entry is None or self._clock() - entry.first_failure > self._window:
            return self.max_failures
        return max(0, self.max_failures - entry.failures)

    def failure(self, client: str) -> float:
        """Record a failed attempt; return the lockout in seconds it started (0 if none)."""
        now = self._clock()
        entry = self._entries.pop(client, None) or _Entry()
        self._entries[client] = entry  # most recent last, for eviction
        if entry.failures == 0 or now - entry.first_failure > self._window:
            entry.failures = 0
            entry.first_failure = now
        entry.failures += 1
        locked = 0.0
        if entry.failures >= self.max_failures:
            locked = min(self._max_lockout, self._lockout * (2**entry.lockouts))
            entry.lockouts += 1
            entry.locked_until = now + locked
            entry.failures = 0
            entry.first_failure = now
        while len(self._entries) > self._max_clients:
            self._entries.popitem(last=False)
        return locked

    def success(self, client: str) -> None:
        """A right password: forget this client's failures."""
        self._entries.pop(client, None)
