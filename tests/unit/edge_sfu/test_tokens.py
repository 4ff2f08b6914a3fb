"""Access tokens: Twilio's format accepted as is, every refusal with Twilio's code."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import ChatGrant, VideoGrant

from edge_sfu.errors import TokenError
from edge_sfu.identity import UnitIdentity, load_or_create_identity
from edge_sfu.keys import ApiKey, KeyStore
from edge_sfu.tokens import CLOCK_SKEW, mint_access_token, verify_access_token

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


@pytest.fixture
def unit(tmp_path: Path) -> tuple[UnitIdentity, KeyStore, ApiKey]:
    identity = load_or_create_identity(tmp_path)
    keys = KeyStore(tmp_path, builtin=identity.signing_key)
    return identity, keys, keys.create("backend")


def twilio_token(account: str, key: ApiKey, **kwargs: object) -> str:
    room = kwargs.pop("room", None)
    token = AccessToken(account, key.sid, key.secret, identity="alice", **kwargs)  # type: ignore[arg-type]
    token.add_grant(VideoGrant(room=room))
    return str(token.to_jwt())


def refused(
    code: int, token: str, unit: tuple[UnitIdentity, KeyStore, ApiKey], **kw: object
) -> None:
    identity, keys, _ = unit
    with pytest.raises(TokenError) as info:
        verify_access_token(token, keys, identity.account_sid, **kw)  # type: ignore[arg-type]
    assert info.value.code == code, info.value.message
    assert info.value.to_json()["code"] == code
    assert info.value.to_json()["status"] == 401


def minute_payload(unit: tuple[UnitIdentity, KeyStore, ApiKey]) -> dict[str, object]:
    """Claims of a token from the unit's API key, valid for a minute, with a video grant."""
    identity, _, key = unit
    return {
        "iss": key.sid,
        "sub": identity.account_sid,
        "exp": int(time.time()) + 60,
        "grants": {"identity": "a", "video": {}},
    }


def forge(header: dict[str, object], payload: dict[str, object], secret: str = "") -> str:
    def b64(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    body = f"{b64(header)}.{b64(payload)}"
    if not secret:
        return body + "."
    import hashlib
    import hmac

    sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return body + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def test_twilio_helper_token_is_accepted_as_is(unit):
    identity, keys, key = unit
    token = twilio_token(identity.account_sid, key, room="standup")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "JWT", "cty": "twilio-fpa;v=1"}
    claims = verify_access_token(token, keys, identity.account_sid, room="standup")
    assert (claims.identity, claims.room, claims.key_sid) == ("alice", "standup", key.sid)


def test_twilio_token_without_room_grant_joins_any_room(unit):
    identity, keys, key = unit
    claims = verify_access_token(
        twilio_token(identity.account_sid, key), keys, identity.account_sid, room="x"
    )
    assert claims.room is None


def test_minted_token_has_twilio_shape(unit):
    identity, keys, key = unit
    token = mint_access_token(key, identity.account_sid, "bob", room="r", ttl=600)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(payload) == {"jti", "iss", "sub", "nbf", "exp", "grants"}
    assert payload["iss"] == key.sid and payload["sub"] == identity.account_sid
    assert payload["grants"] == {"identity": "bob", "video": {"room": "r"}}
    assert payload["exp"] - payload["nbf"] == 600
    assert verify_access_token(token, keys, identity.account_sid).identity == "bob"


def test_unit_signing_key_verifies_but_is_not_listed(unit):
    identity, keys, _ = unit
    token = mint_access_token(identity.signing_key, identity.account_sid, "kiosk")
    assert verify_access_token(token, keys, identity.account_sid).identity == "kiosk"
    assert identity.signing_key.sid not in {k.sid for k in keys.list()}


def test_bad_signature_20107(unit):
    identity, _, key = unit
    wrong = ApiKey(key.sid, "x", "not-the-secret-not-the-secret-xx", "")
    refused(20107, twilio_token(identity.account_sid, wrong), unit)


@pytest.mark.parametrize("alg", ["none", "HS512", "HS384"])
def test_other_algorithms_20101(unit, alg):
    _, _, key = unit
    payload = minute_payload(unit)
    header = {"alg": alg, "typ": "JWT", "cty": "twilio-fpa;v=1"}
    token = (
        forge(header, payload)
        if alg == "none"
        else jwt.encode(payload, key.secret, algorithm=alg, headers={"cty": "twilio-fpa;v=1"})
    )
    refused(20101, token, unit)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 10000, "eyJhbGciOiJIUzI1NiJ9..."])
def test_malformed_20101(unit, garbage):
    refused(20101, garbage, unit)


def test_a_token_that_is_not_ascii_is_20101(unit):
    refused(20101, "\ud800", unit)  # a lone surrogate: cannot even be encoded to bytes
    refused(20101, "é.é.é", unit)


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["1", True, 1.5, None, [1]])
def test_a_time_claim_that_is_not_an_integer_is_20101(unit, claim, value):
    identity, _, key = unit
    now = int(time.time())
    payload: dict[str, object] = {
        "jti": "x",
        "iss": key.sid,
        "sub": identity.account_sid,
        "nbf": now,
        "exp": now + 600,
        "grants": {"identity": "a", "video": {}},
    }
    payload[claim] = str(payload.get(claim, now)) if value == "1" else value
    if value is None and claim != "exp":
        return  # an absent nbf or iat is allowed
    token = jwt.encode(payload, key.secret, algorithm="HS256", headers={"cty": "twilio-fpa;v=1"})
    refused(20101, token, unit)
    refused(20101, token, unit, now=time.time())


def test_missing_cty_20102(unit):
    _, _, key = unit
    payload = minute_payload(unit)
    refused(20102, jwt.encode(payload, key.secret, algorithm="HS256"), unit)


def test_expired_20104(unit):
    identity, _, key = unit
    now = int(time.time())
    token = twilio_token(
        identity.account_sid, key, nbf=now - 7200, valid_until=now - CLOCK_SKEW - 1
    )
    refused(20104, token, unit)


def test_not_yet_valid_20105(unit):
    identity, _, key = unit
    token = twilio_token(identity.account_sid, key, nbf=int(time.time()) + 3600)
    refused(20105, token, unit)


def test_clock_skew_is_tolerated(unit):
    identity, keys, key = unit
    now = time.time()
    early = mint_access_token(key, identity.account_sid, "a", now=now + CLOCK_SKEW / 2)
    assert verify_access_token(early, keys, identity.account_sid).identity == "a"
    refused(
        20105, mint_access_token(key, identity.account_sid, "a", now=now + CLOCK_SKEW * 3), unit
    )


def test_unknown_key_20103(unit):
    identity, _, _ = unit
    stranger = ApiKey("SK" + "0" * 32, "x", "s" * 32, "")
    refused(20103, twilio_token(identity.account_sid, stranger), unit)


def test_revoked_key_20103(unit):
    identity, keys, key = unit
    token = twilio_token(identity.account_sid, key)
    verify_access_token(token, keys, identity.account_sid)
    keys.revoke(key.sid)
    refused(20103, token, unit)


def test_other_account_20103(unit):
    _, _, key = unit
    refused(20103, twilio_token("AC" + "1" * 32, key), unit)


def test_missing_identity_20106(unit):
    identity, _, key = unit
    token = AccessToken(identity.account_sid, key.sid, key.secret)
    token.add_grant(VideoGrant())
    refused(20106, token.to_jwt(), unit)


def test_missing_video_grant_20106(unit):
    identity, _, key = unit
    token = AccessToken(identity.account_sid, key.sid, key.secret, identity="alice")
    token.add_grant(ChatGrant(service_sid="IS" + "0" * 32))
    refused(20106, token.to_jwt(), unit)


def test_room_grant_for_another_room_20106(unit):
    identity, _, key = unit
    refused(20106, twilio_token(identity.account_sid, key, room="a"), unit, room="b")


def test_lifetime_over_24h_20157(unit):
    identity, _, key = unit
    refused(20157, twilio_token(identity.account_sid, key, ttl=24 * 3600 + 1), unit)


def test_tampered_payload_is_refused(unit):
    identity, _, key = unit
    head, payload, sig = twilio_token(identity.account_sid, key, room="a").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["grants"]["video"]["room"] = "b"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    refused(20107, f"{head}.{forged}.{sig}", unit, room="b")


def test_secrets_stay_out_of_reprs(unit):
    identity, _, key = unit
    assert key.secret not in repr(key)
    assert identity.auth_token not in repr(identity)
    assert identity.signing_key.secret not in repr(identity)
