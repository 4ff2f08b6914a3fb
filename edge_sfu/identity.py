"""The unit's own account: its account SID and auth token, made on first start.

The auth token signs status callbacks (``X-Twilio-Signature``) and the invite links, exactly
as Twilio's account auth token does. The unit also holds a signing key of its own, used for
tokens the unit mints itself (``edge-appliance token``, invites, the kiosk joining its own
room); it verifies like any API key but is not listed, so it cannot be revoked by mistake.
Everything lives in ``identity.json`` in the data directory, mode 0600, written atomically.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from edge_common.atomic import atomic_write

from .keys import ApiKey
from .sids import ACCOUNT, API_KEY, is_sid, new_sid

IDENTITY_FILE = "identity.json"


@dataclass(frozen=True)
class UnitIdentity:
    """The account this unit plays: every room and key belongs to it."""

    account_sid: str
    auth_token: str
    signing_key: ApiKey

    def __repr__(self) -> str:  # the token is a secret: keep it out of logs and tracebacks
        return f"UnitIdentity(account_sid={self.account_sid!r}, auth_token=<hidden>)"


def load_or_create_identity(data_dir: Path) -> UnitIdentity:
    """Read the unit's identity, creating it (atomically, mode 0600) on first start."""
    path = data_dir / IDENTITY_FILE
    if path.exists():
        return _read(path)
    alphabet = string.ascii_letters + string.digits
    key = ApiKey(
        sid=new_sid(API_KEY),
        friendly_name="unit",
        secret="".join(secrets.choice(alphabet) for _ in range(32)),
        date_created="",
    )
    identity = UnitIdentity(new_sid(ACCOUNT), secrets.token_hex(16), key)
    data_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "account_sid": identity.account_sid,
        "auth_token": identity.auth_token,
        "signing_key": {"sid": key.sid, "secret": key.secret},
    }
    atomic_write(path, json.dumps(payload, indent=2) + "\n", mode=0o600)
    return identity


def _read(path: Path) -> UnitIdentity:
    try:
        raw = json.loads(path.read_text())
        sid, token = raw["account_sid"], raw["auth_token"]
        key_sid, key_secret = raw["signing_key"]["sid"], raw["signing_key"]["secret"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"{path}: unreadable unit identity ({exc.__class__.__name__})") from exc
    fields = (sid, token, key_sid, key_secret)
    if not all(isinstance(f, str) for f in fields) or not is_sid(sid, ACCOUNT):
        raise RuntimeError(f"{path}: account_sid, auth_token or signing_key malformed")
    if not is_sid(key_sid, API_KEY):
        raise RuntimeError(f"{path}: signing_key.sid malformed")
    return UnitIdentity(sid, token, ApiKey(key_sid, "unit", key_secret, ""))
