"""Server-side admin sessions behind an opaque cookie.

The cookie carries only a random token; the server keeps a digest of it (so a memory dump
does not yield usable cookies) with its expiry and the credential fingerprint it was made
under. Sessions end at sign-out, at expiry (absolute and idle), and when the password
changes. They live in memory: a daemon restart signs everyone out, which is acceptable on a
unit administered now and then and avoids persisting bearer tokens.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

COOKIE_NAME = "edge_admin"
ABSOLUTE_LIFETIME_S = 8 * 3600
IDLE_TIMEOUT_S = 30 * 60
MAX_SESSIONS = 64  # a few admins at most; bounds memory if something loops signing in


@dataclass
class Session:
    """One signed-in browser."""

    key: str  # digest of the cookie token
    fingerprint: str
    created: float
    last_seen: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    """Creates, checks and ends sessions. ``clock`` is injectable for tests."""

    def __init__(
        self,
        fingerprint: Callable[[], str],
        *,
        clock: Callable[[], float] = time.monotonic,
        absolute_s: float = ABSOLUTE_LIFETIME_S,
        idle_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self._fingerprint = fingerprint
        self._clock = clock
        self._absolute = absolute_s
        self._idle = idle_s
        self._sessions: dict[str, Session] = {}

    @property
    def max_age(self) -> int:
        """Cookie ``Max-Age``: the browser forgets it when the server would refuse it."""
        return int(self._absolute)

    def create(self) -> tuple[str, Session]:
        """Start a session; return the cookie token (shown to nobody else) and the record."""
        self._expire()
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
            del self._sessions[oldest.key]
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(_digest(token), self._fingerprint(), now, now)
        self._sessions[session.key] = session
        return token, session

    def get(self, token: str | None, *, touch: bool = True) -> Session | None:
        """The live session for a cookie token, or ``None``.

        ``touch`` restarts the idle timer; the status stream checks without touching, so an
        open status page alone does not keep a session alive.
        """
        if not token or len(token) > 128:
            return None
        session = self._sessions.get(_digest(token))
        if session is None:
            return None
        now = self._clock()
        fresh = (
            now - session.created < self._absolute
            and now - session.last_seen < self._idle
            and secrets.compare_digest(session.fingerprint, self._fingerprint())
        )
        if not fresh:
            del self._sessions[session.key]
            return None
        if touch:
            session.last_seen = now
        return session

    def end(self, token: str | None) -> None:
        """Sign out: the token stops working even if the browser keeps it."""
        if token:
            self._sessions.pop(_digest(token), None)

    def end_all(self) -> None:
        """Password changed or factory reset: everyone signs in again."""
        self._sessions.clear()

    def _expire(self) -> None:
        now = self._clock()
        for key, s in list(self._sessions.items()):
            if now - s.created >= self._absolute or now - s.last_seen >= self._idle:
                del self._sessions[key]
