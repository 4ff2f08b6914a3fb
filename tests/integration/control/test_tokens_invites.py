"""``POST /v1/Tokens`` and ``POST /v1/Invites/Redeem``."""

from __future__ import annotations

import jwt
import pytest

from edge_sfu.errors import TokenError
from edge_sfu.invites import create_invite
from edge_sfu.tokens import verify_access_token
from tests.support.sfu import Unit


async def test_token_endpoint_mints_with_the_callers_key(unit: Unit) -> None:
    resp = await unit.client.post(
        "/v1/Tokens", data={"Identity": "alice", "Room": "lobby", "Ttl": "600"}, headers=unit.auth
    )
    assert resp.status == 201
    body = await resp.json()
    claims = verify_access_token(
        body["token"], unit.context.keys, unit.identity.account_sid, room="lobby"
    )
    assert (claims.identity, claims.room, claims.key_sid) == ("alice", "lobby", unit.key.sid)
    assert (
        claims.expires_at - jwt.decode(body["token"], options={"verify_signature": False})["nbf"]
        == 600
    )
    unit.context.keys.revoke(unit.key.sid)
    with pytest.raises(TokenError) as info:
        verify_access_token(body["token"], unit.context.keys, unit.identity.account_sid)
    assert info.value.code == 20103


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({}, 400, 53200),
        ({"Identity": ""}, 400, 53200),
        ({"Identity": "x" * 122}, 400, 53200),
        ({"Identity": "a", "Ttl": "0"}, 400, 20157),
        ({"Identity": "a", "Ttl": "86401"}, 400, 20157),
        ({"Identity": "a", "Ttl": "soon"}, 400, 20157),
        ({"Identity": "a", "Room": "x" * 129}, 400, 53102),
        ({"Identity": "a", "Grant": "admin"}, 400, 20001),
    ],
)
async def test_token_endpoint_refusals(
    unit: Unit, form: dict[str, str], status: int, code: int
) -> None:
    resp = await unit.client.post("/v1/Tokens", data=form, headers=unit.auth)
    assert resp.status == status
    assert (await resp.json())["code"] == code


async def test_token_endpoint_needs_a_key(unit: Unit) -> None:
    resp = await unit.client.post("/v1/Tokens", data={"Identity": "alice"})
    assert resp.status == 401 and (await resp.json())["code"] == 20003


async def redeem(unit: Unit, invite: str, identity: str):
    return await unit.client.post(
        "/v1/Invites/Redeem", data={"Invite": invite, "Identity": identity}
    )


async def test_invite_redeems_once_per_identity(unit: Unit) -> None:
    invite = create_invite(unit.identity.auth_token, "party", ttl=3600)
    resp = await redeem(unit, invite, "guest-1")
    assert resp.status == 201
    body = await resp.json()
    claims = verify_access_token(
        body["token"], unit.context.keys, unit.identity.account_sid, room="party"
    )
    assert (claims.identity, claims.room) == ("guest-1", "party")
    assert claims.key_sid == unit.identity.signing_key.sid
    again = await redeem(unit, invite, "guest-1")
    assert again.status == 409 and (await again.json())["code"] == 53200
    other = await redeem(unit, invite, "guest-2")
    assert other.status == 201


async def test_invite_cannot_take_a_connected_identity(unit: Unit) -> None:
    await unit.context.rooms.connect("host", "party")
    invite = create_invite(unit.identity.auth_token, "party", ttl=3600)
    resp = await redeem(unit, invite, "host")
    assert resp.status == 409
    # refused attempts do not burn the name: once host leaves, the guest may take it
    room = unit.context.rooms.live_room_by_name("party")
    await unit.context.rooms.disconnect(next(iter(room.participants)))
    assert (await redeem(unit, invite, "host")).status == 201


async def test_invite_refusals(unit: Unit) -> None:
    good = create_invite(unit.identity.auth_token, "party", ttl=3600)
    forged = create_invite("another-units-auth-token-of-32-bytes", "party", ttl=3600)
    expired = jwt.encode(
        {"typ": "edge-invite", "jti": "x", "room": "party", "exp": 1}, unit.identity.auth_token
    )
    cases = [
        ({"Invite": forged, "Identity": "g"}, 401, 20107),
        ({"Invite": expired, "Identity": "g"}, 401, 20104),
        ({"Invite": "garbage", "Identity": "g"}, 401, 20101),
        ({"Invite": good}, 400, 53200),
        ({"Invite": good, "Identity": "bad\u0001name"}, 400, 53200),
        ({"Identity": "g"}, 401, 20101),
        ({"Invite": good, "Identity": "g", "Room": "other"}, 400, 20001),
    ]
    for form, status, code in cases:
        resp = await unit.client.post("/v1/Invites/Redeem", data=form)
        assert resp.status == status, form
        assert (await resp.json())["code"] == code, form
    # none of the refusals recorded a redemption
    assert (await redeem(unit, good, "g")).status == 201
