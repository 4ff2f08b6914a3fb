"""Invite links for guests: signed, expiring, bound to one room, limited to a number of guests.

An invite is a compact HS256 JWT signed with the unit's auth token (never an API key, so a
leaked invite cannot be turned into an access token offline). A guest exchanges it for an
access token with a name of their choosing. The store keeps a registry of guest names
(``Store.claim_guest``): a name a guest holds is bound to that guest's secret key, so only the
same browser can redeem it again, and a name the unit has issued or seen otherwise (a token
from ``POST /v1/Tokens``, a participant that joined with a backend's token) is never given to
a guest. Each invite admits at most ``guests`` distinct names.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

import jwt

from .errors import TokenError
from .rooms import validate_room_name

INVITE_TYPE = "edge-invite"
#: The one rule for an invite's lifetime, in seconds, wherever one is made (the command line,
#: the admin page, any API): at least 5 minutes (long enough to pass a link on), at most 7 days.
MIN_INVITE_TTL = 5 * 60
MAX_INVITE_TTL = 7 * 24 * 3600
DEFAULT_INVITE_TTL = 24 * 3600
#: How many different guests one invite admits unless its creator says otherwise.
DEFAULT_INVITE_GUESTS = 5
MAX_INVITE_GUESTS = 50
#: A guest key: the secret that lets one browser redeem its own name again.
_GUEST_KEY = re.compile(r"[A-Za-z0-9_-]{32,128}")


@dataclass(frozen=True)
class Invite:
    """A verified invite."""

    invite_id: str
    room: str
    expires_at: int
    guests: int


def create_invite(
    auth_token: str,
    room: str,
    *,
    ttl: int = DEFAULT_INVITE_TTL,
    guests: int = DEFAULT_INVITE_GUESTS,
) -> str:
    """Sign an invite to ``room`` valid for ``ttl`` seconds, admitting ``guests`` names.

    ``room`` must be a name a participant can join (the same rule as every room name), so an
    invite never redeems to a token that can never be used.
    """
    validate_room_name(room)
    if not MIN_INVITE_TTL <= ttl <= MAX_INVITE_TTL:
        raise TokenError(
            f"an invite's lifetime must be {MIN_INVITE_TTL} to {MAX_INVITE_TTL} seconds "
            f"({MIN_INVITE_TTL // 60} minutes to {MAX_INVITE_TTL // 86400} days)",
            code=20001,
            status=400,
        )
    if not 1 <= guests <= MAX_INVITE_GUESTS:
        raise TokenError(f"guests must be 1 to {MAX_INVITE_GUESTS}", code=20001, status=400)
    now = int(time.time())
    claims = {
        "typ": INVITE_TYPE,
        "jti": secrets.token_hex(8),
        "room": room,
        "exp": now + ttl,
        "guests": guests,
    }
    return jwt.encode(claims, auth_token, algorithm="HS256")


def verify_invite(invite: str, auth_token: str) -> Invite:
    """Check an invite's signature, type and expiry."""
    if not isinstance(invite, str) or not invite or len(invite) > 2048:
        raise TokenError("Invalid invite", code=20101)
    try:
        claims = jwt.decode(
            invite, auth_token, algorithms=["HS256"], options={"require": ["exp", "jti"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("Invite expired", code=20104) from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError("Invalid invite signature", code=20107) from exc
    except jwt.PyJWTError as exc:
        raise TokenError("Invalid invite", code=20101) from exc
    room, exp = claims.get("room"), claims.get("exp")
    # Invites signed before the guest limit existed admit the default number of guests.
    guests = claims.get("guests", DEFAULT_INVITE_GUESTS)
    if (
        claims.get("typ") != INVITE_TYPE
        or not isinstance(room, str)
        or not room
        or not isinstance(exp, int)
        or not isinstance(guests, int)
        or not 1 <= guests <= MAX_INVITE_GUESTS
    ):
        raise TokenError("Invalid invite", code=20101)
    return Invite(invite_id=str(claims["jti"]), room=room, expires_at=exp, guests=guests)


def new_guest_key() -> str:
    """A fresh guest key (URL-safe, 43 characters)."""
    return secrets.token_urlsafe(32)


def is_guest_key(value: str) -> bool:
    """Whether ``value`` has the shape of a guest key (32 to 128 URL-safe characters)."""
    return _GUEST_KEY.fullmatch(value) is not None


def guest_key_hash(key: str) -> str:
    """What the store keeps of a guest key: its SHA-256 (a copy of the database redeems nothing)."""
    return hashlib.sha256(key.encode()).hexdigest()
