"""The admin credential on disk: the argon2id hash, the sessions secret, and the way back in.

Everything lives under ``<data_dir>/admin/``, written atomically with mode 0600. Sessions
remember a fingerprint of the stored hash, so changing or resetting the password (even from
the console, in another process) invalidates every session at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
from pathlib import Path

from edge_common.atomic import atomic_write

from . import passwords
from .errors import NotClaimed

_LOCK = threading.Lock()  # claim and password changes are read-check-write sequences


def admin_dir(data_dir: Path) -> Path:
    """Where the admin state lives."""
    return Path(data_dir) / "admin"


class AdminStore:
    """Reads and writes the admin state files of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.dir = admin_dir(self.data_dir)
        self.hash_path = self.dir / "password.argon2id"
        self.claim_path = self.dir / "claim-code"
        self.secret_path = self.dir / "session-secret"

    def is_claimed(self) -> bool:
        """True once an admin password has been set."""
        return self.hash_path.is_file()

    def password_hash(self) -> str | None:
        """The stored hash string, or ``None`` while unclaimed."""
        try:
            return self.hash_path.read_text().strip() or None
        except FileNotFoundError:
            return None

    def credential_fingerprint(self) -> str:
        """A digest of the stored hash; it changes whenever the password does."""
        stored = self.password_hash() or ""
        return hashlib.sha256(stored.encode()).hexdigest()

    def session_secret(self) -> bytes:
        """The HMAC key for CSRF tokens, made on first use and kept across restarts."""
        with _LOCK:
            try:
                value = bytes.fromhex(self.secret_path.read_text().strip())
                if len(value) >= 32:
                    return value
            except (FileNotFoundError, ValueError):
                pass
            value = secrets.token_bytes(32)
            atomic_write(self.secret_path, value.hex() + "\n", mode=0o600)
            return value

    def verify(self, password: str) -> bool:
        """Check a sign-in password. Slow by design: call it from a worker thread."""
        stored = self.password_hash()
        if stored is None:
            # Same cost as a real check, so timing does not tell claimed from unclaimed.
            passwords.verify_password(_DUMMY_HASH, password)
            return False
        return passwords.verify_password(stored, password)

    def set_password(self, new_password: str, *, unit_name: str = "") -> None:
        """Check the policy, store the new hash (invalidating all sessions), drop any claim code."""
        passwords.check_policy(new_password, unit_name=unit_name)
        digest = passwords.hash_password(new_password)
        with _LOCK:
            atomic_write(self.hash_path, digest + "\n", mode=0o600)
            with contextlib.suppress(FileNotFoundError):
                self.claim_path.unlink()

    def change_password(self, current: str, new_password: str, *, unit_name: str = "") -> bool:
        """Change the password if ``current`` is right; ``False`` when it is not."""
        if not self.is_claimed():
            raise NotClaimed("The unit has no admin password yet.")
        if not self.verify(current):
            return False
        self.set_password(new_password, unit_name=unit_name)
        return True

    def erase(self) -> None:
        """Forget the password, claim code and sessions secret (factory reset)."""
        with _LOCK:
            for path in (self.hash_path, self.claim_path, self.secret_path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


_DUMMY_HASH = passwords.hash_password(secrets.token_urlsafe(16))


def reset_password(data_dir: Path) -> str:
    """``edge-appliance admin reset-password``: return the unit to unclaimed.

    Safer than setting a password from the command line (no password in shell history or
    ``ps``): the stored hash is deleted, every session stops working, and a new one-time
    claim code is made and returned for the console to print. The admin then claims the
    unit again from the browser with that code.
    """
    from .claim import new_claim_code  # claim imports this module

    store = AdminStore(data_dir)
    with _LOCK, contextlib.suppress(FileNotFoundError):
        store.hash_path.unlink()
    return new_claim_code(data_dir)
