"""The last log lines in memory, for the admin status page: bounded, with secrets masked.

``LogBuffer`` is a ``logging.Handler`` the daemon installs on the root logger. It keeps the
newest ``capacity`` records as plain dicts (time, level, logger, message) after
:func:`redact` has masked anything shaped like a credential, so what the page shows can
be pasted into a support ticket. Records are kept whatever their level; the reader filters.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

#: ``name=value`` / ``name: value`` pairs whose value is a credential.
_PAIR = re.compile(
    r"(?i)\b([\w-]*(?:secret|password|passphrase|token|credential|api[_-]?key|auth)[\w-]*)"
    r"(\s*[=:]\s*)(?!(?:Basic|Bearer)\s|\[redacted\])(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
#: Credentials recognisable on their own: JWTs (access tokens, invites), Basic/Bearer
#: headers, URL user-info passwords, and the admin claim code.
_STANDALONE = (
    re.compile(r"\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}"),
    re.compile(r"(?i)\b(Basic|Bearer)\s+[A-Za-z0-9+/=._-]{8,}"),
    re.compile(r"(?<=://)([^/\s:@]+):[^/\s@]+(?=@)"),
    re.compile(r"(?i)\b(claim code\s+)[A-Z0-9]{4}(?:-?[A-Z0-9]{4}){2,}"),
)
MASK = "[redacted]"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def redact(text: str) -> str:
    """``text`` with every credential-shaped part replaced by ``[redacted]``."""
    text = _STANDALONE[0].sub(MASK, text)
    text = _STANDALONE[1].sub(lambda m: m.group(1) + " " + MASK, text)
    text = _STANDALONE[2].sub(lambda m: m.group(1) + ":" + MASK, text)
    text = _STANDALONE[3].sub(lambda m: m.group(1) + MASK, text)
    return _PAIR.sub(lambda m: m.group(1) + m.group(2) + MASK, text)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One kept record."""

    time: float
    level: str
    levelno: int
    logger: str
    message: str


class LogBuffer(logging.Handler):
    """Keeps the newest ``capacity`` records (redacted) for :meth:`lines`. Thread-safe."""

    def __init__(self, capacity: int = 500, max_message: int = 2000) -> None:
        super().__init__(logging.DEBUG)
        self._lines: collections.deque[LogLine] = collections.deque(maxlen=capacity)
        self._max_message = max_message
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep ``record``; a record that cannot be formatted is kept as its template."""
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must not lose the line (or raise into the caller)
            message = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message += f" ({type(exc).__name__}: {exc})"
        line = LogLine(
            record.created,
            record.levelname,
            record.levelno,
            record.name,
            redact(message[: self._max_message]),
        )
        with self._guard:
            self._lines.append(line)

    def lines(self, min_level: str = "DEBUG", limit: int = 200) -> Sequence[LogLine]:
        """The newest ``limit`` lines at ``min_level`` or above, oldest first."""
        threshold = logging.getLevelName(min_level.upper())
        if not isinstance(threshold, int):
            raise ValueError(f"no log level {min_level!r}")
        with self._guard:
            kept = [line for line in self._lines if line.levelno >= threshold]
        return kept[-limit:] if limit > 0 else []
