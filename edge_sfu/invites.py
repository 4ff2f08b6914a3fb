"""Invite links for guests: signed, expiring, bound to one room, redeemed once per identity.

An invite is a compact HS256 JWT signed with the unit's auth token (never an API key, so a
leaked invite cannot be turned into an access token offline). A guest exchanges it once for an
access token with an identity of their choosing; the caller records redemptions
(``invite id``, identity) so the same invite cannot mint a second token for an identity it
already gave out, and so a guest cannot take an identity another guest holds.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

from .errors import TokenError

INVITE_TYPE = "edge-invite"
MAX_INVITE_TTL = 7 * 24 * 3600
DEFAULT_INVITE_TTL = 24 * 3600


@dataclass(frozen=True)
class Invite:
    """A verified invite."""

    invite_id: str
    room: str
    expires_at: int


def create_invite(auth_token: str, room: str, *, ttl: int = DEFAULT_INVITE_TTL) -> str:
    """Sign an invite to ``room`` valid for ``ttl`` seconds."""
    if not room or len(room) > 128:
        raise TokenError("room name must be 1 to 128 characters", code=53102, status=400)
    if not 60 <= ttl <= MAX_INVITE_TTL:
        raise TokenError(f"Ttl must be 60 to {MAX_INVITE_TTL} seconds", code=20001, status=400)
    now = int(time.time())
    claims = {"typ": INVITE_TYPE, "jti": secrets.token_hex(8), "room": room, "exp": now + ttl}
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
    room = claims.get("room")
    if claims.get("typ") != INVITE_TYPE or not isinstance(room, str) or not room:
        raise TokenError("Invalid invite", code=20101)
    return Invite(invite_id=str(claims["jti"]), room=room, expires_at=int(claims["exp"]))
