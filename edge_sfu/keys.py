"""API keys (``SK...`` SID and a secret): what signs access tokens and authenticates REST calls.

Keys live in ``keys.json`` in the data directory (mode 0600, written atomically). The CLI and
the daemon both change it, so every change happens under an exclusive ``flock``; readers
re-read only when the file was replaced (its inode or mtime changed), which keeps a token
verification at one ``stat`` call.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
import secrets
import string
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge_common.atomic import atomic_write

from .errors import InvalidParameter, NotFound
from .sids import API_KEY, new_sid

KEYS_FILE = "keys.json"
_SECRET_ALPHABET = string.ascii_letters + string.digits
MAX_NAME = 64


@dataclass(frozen=True)
class ApiKey:
    """One API key. ``secret`` is the HMAC key of the tokens it signs."""

    sid: str
    friendly_name: str
    secret: str
    date_created: str

    def __repr__(self) -> str:
        return f"ApiKey(sid={self.sid!r}, friendly_name={self.friendly_name!r}, secret=<hidden>)"

    def public(self) -> dict[str, str]:
        """The key as shown after creation: everything but the secret."""
        return {
            "sid": self.sid,
            "friendly_name": self.friendly_name,
            "date_created": self.date_created,
        }


class KeyStore:
    """The unit's API keys, shared by the CLI, the daemon and the admin page."""

    def __init__(self, data_dir: Path, builtin: ApiKey | None = None) -> None:
        """``builtin`` is the unit's own signing key: it verifies but is never listed."""
        self._builtin = builtin
        self._path = data_dir / KEYS_FILE
        self._lock_path = data_dir / (KEYS_FILE + ".lock")
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    def create(self, friendly_name: str) -> ApiKey:
        """Make a new key; its secret is returned here and never shown again by the API."""
        name = friendly_name.strip()
        if not name or len(name) > MAX_NAME or not name.isprintable():
            raise InvalidParameter(f"FriendlyName must be 1 to {MAX_NAME} printable characters")
        secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(32))
        key = ApiKey(new_sid(API_KEY), name, secret, _now())
        with self._locked():
            keys = self._read_file()
            keys[key.sid] = key
            self._write_file(keys)
        return key

    def revoke(self, sid: str) -> None:
        """Delete a key: tokens it signed stop verifying at once."""
        with self._locked():
            keys = self._read_file()
            if keys.pop(sid, None) is None:
                raise NotFound(f"API key {sid} not found")
            self._write_file(keys)

    def list(self) -> list[ApiKey]:
        """All keys, oldest first."""
        self._refresh()
        return sorted(self._keys.values(), key=lambda k: (k.date_created, k.sid))

    def get(self, sid: str) -> ApiKey | None:
        """The key with ``sid``, or None if unknown or revoked."""
        if self._builtin is not None and sid == self._builtin.sid:
            return self._builtin
        self._refresh()
        return self._keys.get(sid)

    def check_secret(self, sid: str, secret: str) -> ApiKey | None:
        """The key if ``secret`` is its secret (constant-time), else None."""
        key = self.get(sid)
        if key is None:
            # Compare anyway so an unknown SID costs the same time as a wrong secret.
            hmac.compare_digest(secret.encode(), b"x" * 32)
            return None
        return key if hmac.compare_digest(secret.encode(), key.secret.encode()) else None

    def _refresh(self) -> None:
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            self._stamp, self._keys = None, {}
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._keys = self._read_file()
            self._stamp = stamp

    def _read_file(self) -> dict[str, ApiKey]:
        try:
            raw = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise RuntimeError(f"{self._path}: not valid JSON") from exc
        return {k["sid"]: ApiKey(**k) for k in raw.get("keys", [])}

    def _write_file(self, keys: dict[str, ApiKey]) -> None:
        payload = {"keys": [asdict(k) for k in keys.values()]}
        atomic_write(self._path, json.dumps(payload, indent=2) + "\n", mode=0o600)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
