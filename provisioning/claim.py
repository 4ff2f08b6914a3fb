"""The one-time claim code that lets the first admin set a password.

A new unit has no admin and no default password. It makes a random code, stored under
``<data_dir>/admin/claim-code`` (0600) and printed to the journal at start and by
``edge-appliance claim-code``; whoever can read the unit's console or journal can claim it.
The code is consumed by a successful claim.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
from pathlib import Path

from edge_common.atomic import atomic_write

from .auth import _LOCK, AdminStore
from .errors import ClaimError

# No 0/O, 1/I/L: the code is read off a console and typed by hand.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
_GROUPS = 4
_GROUP_LEN = 4  # 16 symbols, about 79 bits: far beyond what throttled guessing reaches


def normalize_code(code: str) -> str:
    """Upper-case and drop separators, so ``abcd efgh`` and ``ABCD-EFGH`` match."""
    return "".join(ch for ch in code.upper() if ch.isalnum())[:64]


def _format(raw: str) -> str:
    return "-".join(raw[i : i + _GROUP_LEN] for i in range(0, len(raw), _GROUP_LEN))


def new_claim_code(data_dir: Path) -> str:
    """Make (or replace) the claim code and return it formatted for display."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(_GROUPS * _GROUP_LEN))
    code = _format(raw)
    atomic_write(AdminStore(data_dir).claim_path, code + "\n", mode=0o600)
    return code


def current_claim_code(data_dir: Path) -> str | None:
    """The claim code to print, or ``None`` when the unit is already claimed.

    Makes one if the unit is unclaimed and has none yet. Run it as the daemon's user, so the
    file stays readable by the daemon.
    """
    store = AdminStore(data_dir)
    with _LOCK:
        if store.is_claimed():
            return None
        try:
            code = store.claim_path.read_text().strip()
        except FileNotFoundError:
            code = ""
        if len(normalize_code(code)) == _GROUPS * _GROUP_LEN:
            return code
    return new_claim_code(data_dir)


def check_claim_code(data_dir: Path, candidate: str) -> bool:
    """Constant-time comparison with the stored code; ``False`` once claimed."""
    store = AdminStore(data_dir)
    if store.is_claimed():
        return False
    try:
        stored = normalize_code(store.claim_path.read_text())
    except FileNotFoundError:
        return False
    given = normalize_code(candidate)
    return bool(stored) and hmac.compare_digest(stored.encode(), given.encode())


def claim(data_dir: Path, code: str, new_password: str, *, unit_name: str = "") -> None:
    """Set the first admin password if ``code`` is right; the code then stops working.

    Raises :class:`ClaimError` for a wrong code or a claimed unit and
    :class:`~provisioning.errors.WeakPassword` for a password the policy refuses (the code
    is not consumed then, so the admin can try another password).
    """
    store = AdminStore(data_dir)
    if store.is_claimed():
        raise ClaimError("This unit is already claimed. Sign in instead.")
    if not check_claim_code(data_dir, code):
        raise ClaimError("That claim code is not right.")
    from . import passwords

    passwords.check_policy(new_password, unit_name=unit_name)
    digest = passwords.hash_password(new_password)
    with _LOCK:
        # Re-check under the lock: two browsers racing with the right code claim once.
        if store.is_claimed() or not check_claim_code(data_dir, code):
            raise ClaimError("This unit is already claimed. Sign in instead.")
        atomic_write(store.hash_path, digest + "\n", mode=0o600)
        with contextlib.suppress(FileNotFoundError):
            store.claim_path.unlink()
