"""Twilio-style resource identifiers: a two-letter prefix and 32 lowercase hex digits."""

from __future__ import annotations

import re
import secrets

ACCOUNT = "AC"
API_KEY = "SK"
ROOM = "RM"
PARTICIPANT = "PA"
TRACK = "MT"
PUBLISHED_TRACK = "MT"
SUBSCRIBED_TRACK = "ST"
RECORDING = "RT"
COMPOSITION = "CJ"
COMPOSITION_HOOK = "HK"
EVENT = "EV"

_SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")


def new_sid(prefix: str) -> str:
    """A fresh random SID with ``prefix`` (e.g. ``RM`` for rooms)."""
    return prefix + secrets.token_hex(16)


def is_sid(value: str, prefix: str | None = None) -> bool:
    """Whether ``value`` looks like a SID (of ``prefix`` when given)."""
    if not _SID.match(value):
        return False
    return prefix is None or value.startswith(prefix)
