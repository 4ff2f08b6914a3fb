"""Access tokens in Twilio's exact format: minting and strict verification.

A token is an HS256 JWT with header ``cty: twilio-fpa;v=1``, signed with an API key secret;
``iss`` is the key SID, ``sub`` the account SID, and ``grants`` holds ``identity`` and a
``video`` grant (optionally bound to one room). Tokens minted by twilio-python's
``AccessToken`` + ``VideoGrant`` verify here unchanged.

Every refusal raises ``TokenError`` with Twilio's code:

=====  ==========================================================
20101  malformed token, an algorithm other than HS256 (``none`` included), or a time
       claim (``exp``, ``nbf``, ``iat``) that is not an integer
20102  header lacks ``cty: twilio-fpa;v=1``
20103  unknown or revoked API key, or a token for another account
20104  expired
20105  not yet valid
20106  no identity, no video grant, or a room grant for another room
20107  bad signature
20157  lifetime (``exp - nbf``) over 24 hours
=====  ==========================================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.types import Options

from .errors import TokenError
from .keys import ApiKey, KeyStore
from .text import is_clean

ALGORITHM = "HS256"
CONTENT_TYPE = "twilio-fpa;v=1"
MAX_LIFETIME = 24 * 3600
#: Clocks of the unit and of the backend that mints tokens may differ this much (seconds).
CLOCK_SKEW = 60
MAX_TOKEN_LENGTH = 8192
MAX_IDENTITY = 121  # Twilio's limit for a participant identity


@dataclass(frozen=True)
class AccessClaims:
    """What a verified token grants."""

    identity: str
    room: str | None
    key_sid: str
    account_sid: str
    expires_at: int
    jti: str


def mint_access_token(
    key: ApiKey,
    account_sid: str,
    identity: str,
    *,
    room: str | None = None,
    ttl: int = 3600,
    now: float | None = None,
) -> str:
    """Sign a Twilio-format access token with a video grant."""
    validate_identity(identity)
    if not 1 <= ttl <= MAX_LIFETIME:
        raise TokenError(f"Ttl must be 1 to {MAX_LIFETIME} seconds", code=20157, status=400)
    issued = int(time.time() if now is None else now)
    video: dict[str, str] = {"room": room} if room else {}
    payload = {
        "jti": f"{key.sid}-{issued}",
        "iss": key.sid,
        "sub": account_sid,
        "nbf": issued,
        "exp": issued + ttl,
        "grants": {"identity": identity, "video": video},
    }
    return jwt.encode(payload, key.secret, algorithm=ALGORITHM, headers={"cty": CONTENT_TYPE})


def validate_identity(identity: str) -> None:
    """Refuse identities Twilio would refuse (empty, too long) and those that are not
    printable text (``edge_sfu.text``: controls, bidirectional controls, zero-width...)."""
    if not identity or len(identity) > MAX_IDENTITY or not is_clean(identity):
        raise TokenError(
            f"identity must be 1 to {MAX_IDENTITY} printable characters",
            code=20106,
        )


def verify_access_token(
    token: str,
    keys: KeyStore,
    account_sid: str,
    *,
    room: str | None = None,
    now: float | None = None,
) -> AccessClaims:
    """Verify ``token`` strictly and return its claims.

    ``room`` is the room being joined: a token whose grant names another room is refused.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("Invalid Access Token: empty or too long", code=20101)
    # A compact JWT is base64url and dots; anything else (a lone surrogate cannot even be
    # encoded to bytes) is malformed before any library sees it.
    if not token.isascii():
        raise TokenError("Invalid Access Token: malformed", code=20101)
    _header(token)
    unverified = _unverified_payload(token)
    key = _signing_key(unverified, keys, account_sid)
    payload = _decode(token, key, now)
    _check_lifetime(payload)
    claims = _grants(payload, key, account_sid)
    if room is not None and claims.room is not None and claims.room != room:
        raise TokenError(f"Access Token grants room {claims.room!r}, not {room!r}", code=20106)
    return claims


def _header(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError("Invalid Access Token: malformed", code=20101) from exc
    if header.get("alg") != ALGORITHM:
        raise TokenError(f"Invalid Access Token: algorithm must be {ALGORITHM}", code=20101)
    if header.get("cty") != CONTENT_TYPE:
        raise TokenError(f"Invalid Access Token header: cty must be {CONTENT_TYPE}", code=20102)
    return header


def _unverified_payload(token: str) -> dict[str, Any]:
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenError("Invalid Access Token: malformed payload", code=20101) from exc
    if not isinstance(payload, dict):
        raise TokenError("Invalid Access Token: payload is not an object", code=20101)
    return payload


def _signing_key(payload: dict[str, Any], keys: KeyStore, account_sid: str) -> ApiKey:
    iss, sub = payload.get("iss"), payload.get("sub")
    if not isinstance(iss, str) or not isinstance(sub, str):
        raise TokenError("Invalid Access Token issuer/subject", code=20103)
    key = keys.get(iss)
    if key is None:
        raise TokenError("Invalid Access Token issuer: unknown or revoked API key", code=20103)
    if sub != account_sid:
        raise TokenError("Invalid Access Token subject: another account", code=20103)
    return key


def _decode(token: str, key: ApiKey, now: float | None) -> dict[str, Any]:
    """Verify the signature, then the time claims: their types first, then the clock.

    PyJWT would take ``"exp": "123"`` (it calls ``int()``) and check the clock before any
    type, so the times are checked here, as of ``now`` (default: the current time).
    """
    options: Options = {
        "require": ["exp", "iss", "sub"],
        "verify_iat": False,
        "verify_exp": False,
        "verify_nbf": False,
    }
    try:
        payload: dict[str, Any] = jwt.decode(
            token, key.secret, algorithms=[ALGORITHM], options=options
        )
    except jwt.InvalidSignatureError as exc:
        raise TokenError("Invalid Access Token signature", code=20107) from exc
    except jwt.PyJWTError as exc:
        raise TokenError(f"Invalid Access Token: {exc}", code=20101) from exc
    for claim in ("exp", "nbf", "iat"):
        value = payload.get(claim)
        if (claim == "exp" or value is not None) and (
            not isinstance(value, int) or isinstance(value, bool)
        ):
            raise TokenError(f"Invalid Access Token: {claim} must be an integer", code=20101)
    at = time.time() if now is None else now
    if payload["exp"] + CLOCK_SKEW <= at:
        raise TokenError("Access Token expired or expiration date invalid", code=20104)
    nbf = payload.get("nbf")
    if nbf is not None and nbf - CLOCK_SKEW > at:
        raise TokenError("Access Token not yet valid", code=20105)
    return payload


def _check_lifetime(payload: dict[str, Any]) -> None:
    exp = payload["exp"]
    start = payload.get("nbf", payload.get("iat", int(time.time())))
    if not isinstance(start, int) or exp - start > MAX_LIFETIME:
        raise TokenError(
            "Expiration Time in the Access Token exceeds the maximum of 24 hours", code=20157
        )


def _grants(payload: dict[str, Any], key: ApiKey, account_sid: str) -> AccessClaims:
    grants = payload.get("grants")
    if not isinstance(grants, dict):
        raise TokenError("Invalid Access Token grants", code=20106)
    identity, video = grants.get("identity"), grants.get("video")
    if not isinstance(identity, str):
        raise TokenError("Invalid Access Token grants: no identity", code=20106)
    validate_identity(identity)
    if not isinstance(video, dict):
        raise TokenError("Invalid Access Token grants: no video grant", code=20106)
    room = video.get("room")
    if room is not None and (not isinstance(room, str) or not room):
        raise TokenError("Invalid Access Token grants: room must be a name", code=20106)
    jti = payload.get("jti")
    return AccessClaims(
        identity=identity,
        room=room,
        key_sid=key.sid,
        account_sid=account_sid,
        expires_at=int(payload["exp"]),
        jti=jti if isinstance(jti, str) else "",
    )
