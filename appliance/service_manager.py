"""Talking to systemd: readiness and status notifications, the watchdog, and journal logging.

Everything here degrades to a no-op (logged at debug level) when the daemon does not run
under systemd (``NOTIFY_SOCKET`` unset) or systemd-python is not installed, so ``make run``
on a laptop and the tests behave like a Pi without special cases in the daemon.

systemd-python is imported lazily, here only, as the architecture asks for vendor libraries.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, Literal, TextIO

from edge_common.lifecycle import AsyncCloseable, TaskSet

__all__ = [
    "JOURNAL_FIELDS_HINT",
    "ServiceNotifier",
    "StructuredFormatter",
    "configure_logging",
    "running_under_systemd",
    "watchdog_interval",
]

log = logging.getLogger(__name__)

NotifyFunction = Callable[[str], bool]


def watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    """The watchdog timeout in seconds that applies to process ``pid``, or ``None``.

    ``WATCHDOG_USEC`` is honoured only when ``WATCHDOG_PID`` is unset or names ``pid``:
    systemd sets the pair for the main process, and a child that inherited the environment
    must not ping on its parent's behalf (that would hide a hung parent).
    """
    raw_usec = env.get("WATCHDOG_USEC")
    if not raw_usec:
        return None
    raw_pid = env.get("WATCHDOG_PID")
    if raw_pid:
        try:
            if int(raw_pid) != pid:
                log.debug("watchdog: WATCHDOG_PID=%s is not us (%d); not pinging", raw_pid, pid)
                return None
        except ValueError:
            log.warning("watchdog: ignoring malformed WATCHDOG_PID=%r", raw_pid)
            return None
    try:
        usec = int(raw_usec)
    except ValueError:
        log.warning("watchdog: ignoring malformed WATCHDOG_USEC=%r", raw_usec)
        return None
    if usec <= 0:
        log.warning("watchdog: ignoring non-positive WATCHDOG_USEC=%r", raw_usec)
        return None
    return usec / 1_000_000


def _load_notify() -> NotifyFunction | None:
    try:
        module = importlib.import_module("systemd.daemon")
    except ImportError:
        log.debug("systemd-python is not installed; service notifications are disabled")
        return None
    notify: NotifyFunction = module.notify
    return notify


class ServiceNotifier(AsyncCloseable):
    """Sends ``sd_notify`` messages and keeps the systemd watchdog fed.

    Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` from the environment
    when constructed. ``start()`` begins the watchdog pings (if systemd asked for them) from a
    task on the running event loop, at half the timeout: pinging from the loop itself, not a
    thread, is the point, because a stalled loop must stop the pings so systemd restarts us.

    ``health_check``, if given, is called before each ping; returning ``False`` skips that
    ping (log and let systemd restart a daemon whose subsystem is wedged).

    Typical use by the daemon::

        notifier = ServiceNotifier()
        await notifier.start()
        notifier.ready("Serving on :8080")
        ...
        notifier.stopping()
        await notifier.close()
    """

    def __init__(
        self,
        *,
        health_check: Callable[[], bool] | None = None,
        notify: NotifyFunction | None = None,
    ) -> None:
        super().__init__()
        self._socket = os.environ.get("NOTIFY_SOCKET") or None
        self._interval = watchdog_interval(os.environ, os.getpid()) if self._socket else None
        self._health_check = health_check
        self._notify = notify
        self._loaded = notify is not None
        self._tasks = TaskSet("systemd watchdog")

    @property
    def enabled(self) -> bool:
        """Whether notifications are sent at all (``NOTIFY_SOCKET`` is set)."""
        return self._socket is not None

    @property
    def watchdog_timeout(self) -> float | None:
        """systemd's watchdog timeout in seconds, or ``None`` when the watchdog is off."""
        return self._interval

    @property
    def ping_interval(self) -> float | None:
        """Seconds between watchdog pings (half the timeout), or ``None``."""
        return None if self._interval is None else self._interval / 2

    # --- messages ---------------------------------------------------------------------------

    def send(self, message: str) -> bool:
        """Send one raw notification (``KEY=VALUE`` lines); ``True`` if it was delivered."""
        if self._socket is None:
            log.debug("not under systemd (NOTIFY_SOCKET unset); not sending %r", message)
            return False
        notify = self._resolve()
        if notify is None:
            log.debug("no systemd-python; not sending %r", message)
            return False
        try:
            return bool(notify(message))
        except OSError as exc:  # a vanished socket must not take the daemon down
            log.warning("sd_notify(%r) failed: %s", message, exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd start-up is complete (``Type=notify`` waits for this)."""
        return self.send("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def status(self, text: str) -> bool:
        """Set the line ``systemctl status`` shows."""
        return self.send(f"STATUS={_one_line(text)}")

    def stopping(self, status: str | None = None) -> bool:
        """Tell systemd a clean shutdown has begun."""
        return self.send("STOPPING=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for ``seconds`` more before the start or stop timeout fires (slow camera probe)."""
        return self.send(f"EXTEND_TIMEOUT_USEC={max(1, int(seconds * 1_000_000))}")

    def ping(self) -> bool:
        """Send one ``WATCHDOG=1`` now."""
        return self.send("WATCHDOG=1")

    # --- watchdog -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start watchdog pings on the running loop, if systemd enabled the watchdog."""
        if self.closed:
            raise RuntimeError("ServiceNotifier is closed")
        if self._tasks or self.ping_interval is None:
            return
        log.info(
            "watchdog: timeout %.1f s, pinging every %.1f s", self._interval, self.ping_interval
        )
        self._tasks.spawn(self._ping_forever(self.ping_interval), name="systemd-watchdog")

    async def _on_close(self) -> None:
        """Stop the pings: cancel the task and wait for it (``close`` is idempotent)."""
        await self._tasks.close()

    async def _ping_forever(self, interval: float) -> None:
        while True:
            if self._healthy():
                self.ping()
            await asyncio.sleep(interval)

    def _healthy(self) -> bool:
        if self._health_check is None:
            return True
        try:
            healthy = self._health_check()
        except Exception:
            log.exception("watchdog: health check raised; skipping this ping")
            return False
        if not healthy:
            log.warning("watchdog: health check failed; skipping this ping")
        return healthy

    def _resolve(self) -> NotifyFunction | None:
        if not self._loaded:
            self._notify = _load_notify()
            self._loaded = True
        return self._notify


def _one_line(text: str) -> str:
    # A newline would start a new KEY=VALUE assignment in the datagram.
    return " ".join(text.split())


# --- journal logging ----------------------------------------------------------------------------

LogTarget = Literal["journal", "stderr"]

JOURNAL_FIELDS_HINT = (
    "Pass structured fields as upper-case names: "
    "log.info('joined', extra={'ROOM_SID': sid, 'PARTICIPANT_SID': psid})"
)

# Attributes every LogRecord has; anything else came from ``extra=``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

_HANDLER_MARK = "_edge_appliance_handler"


def running_under_systemd(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process was started by systemd (it sets these for every service)."""
    env = os.environ if env is None else env
    return bool(env.get("JOURNAL_STREAM") or env.get("INVOCATION_ID"))


def structured_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The journal-style fields passed through ``extra=``: upper-case names only, since
    journald drops any field whose name is not upper-case letters, digits and ``_``."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _RECORD_ATTRS and key.isupper() and not key.startswith("_")
    }


class StructuredFormatter(logging.Formatter):
    """A plain-text formatter that appends ``extra=`` journal fields as ``KEY=value``, so
    stderr logs keep what the journal would have stored in fields."""

    def __init__(self, fmt: str | None = None, *, syslog_prefix: bool = False) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._syslog_prefix = syslog_prefix

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = structured_fields(record)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in sorted(fields.items()))
        if self._syslog_prefix:
            # journald reads "<N>" at the start of a stream line as the priority.
            text = f"<{_syslog_priority(record.levelno)}>{text}"
        return text


def _syslog_priority(levelno: int) -> int:
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def configure_logging(
    level: int | str = logging.INFO,
    *,
    identifier: str = "edge-appliance",
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> LogTarget:
    """Send the root logger to the journal under systemd, to stderr otherwise.

    Under systemd (``JOURNAL_STREAM`` or ``INVOCATION_ID`` set) with systemd-python present,
    records go to ``systemd.journal.JournalHandler`` with ``SYSLOG_IDENTIFIER=identifier`` and
    any upper-case ``extra=`` keys (``ROOM_SID``, ``PARTICIPANT_SID``...) as journal fields,
    so ``journalctl ROOM_SID=RM...`` finds a room's story. Otherwise a plain stderr handler
    appends those fields to the line (with ``<N>`` priority prefixes when under systemd).

    Calling it again replaces the handler it installed before. Returns where logs go.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
            handler.close()
    under_systemd = running_under_systemd(env)
    new: logging.Handler | None = _journal_handler(identifier) if under_systemd else None
    target: LogTarget = "journal"
    if new is None:
        new = logging.StreamHandler(stream or sys.stderr)
        # Under systemd, stderr is the journal already: the timestamp would be doubled.
        fmt = "%(levelname)s %(name)s: %(message)s" if under_systemd else None
        new.setFormatter(StructuredFormatter(fmt, syslog_prefix=under_systemd))
        target = "stderr"
    setattr(new, _HANDLER_MARK, True)
    root.addHandler(new)
    root.setLevel(level)
    return target


def _journal_handler(identifier: str) -> logging.Handler | None:
    try:
        journal = importlib.import_module("systemd.journal")
    except ImportError:
        log.debug("systemd-python is not installed; logging to stderr")
        return None
    handler: logging.Handler = journal.JournalHandler(SYSLOG_IDENTIFIER=identifier)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler
