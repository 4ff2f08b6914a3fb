"""``POST /v1/Tokens`` and ``POST /v1/Invites/Redeem``."""

from __future__ import annotations

import jwt
import pytest

from edge_sfu.errors import TokenError, TwilioError
from edge_sfu.invites import DEFAULT_INVITE_GUESTS, create_invite
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


async def redeem(unit: Unit, invite: str, identity: str, guest_key: str | None = None):
    form = {"Invite": invite, "Identity": identity}
    if guest_key is not None:
        form["GuestKey"] = guest_key
    return await unit.client.post("/v1/Invites/Redeem", data=form)


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
    # once host leaves, the name is still host's: a guest cannot take it while they are away
    room = unit.context.rooms.live_room_by_name("party")
    await unit.context.rooms.disconnect(next(iter(room.participants)))
    away = await redeem(unit, invite, "host")
    assert away.status == 409 and (await away.json())["code"] == 53200
    # refused attempts do not use up the invite's guests
    assert (await redeem(unit, invite, "guest")).status == 201


async def test_invite_cannot_take_an_identity_issued_by_the_token_endpoint(unit: Unit) -> None:
    resp = await unit.client.post("/v1/Tokens", data={"Identity": "boss"}, headers=unit.auth)
    assert resp.status == 201
    invite = create_invite(unit.identity.auth_token, "party", ttl=3600)
    taken = await redeem(unit, invite, "boss")
    assert taken.status == 409 and (await taken.json())["code"] == 53200


async def test_a_guest_redeems_its_own_name_again_with_its_key(unit: Unit) -> None:
    invite = create_invite(unit.identity.auth_token, "party", ttl=3600)
    first = await redeem(unit, invite, "ann")
    assert first.status == 201
    key = (await first.json())["guestKey"]
    # the same browser (it presents its key) gets a token again, not counted as a new guest
    again = await redeem(unit, invite, "ann", key)
    assert again.status == 201
    body = await again.json()
    claims = verify_access_token(body["token"], unit.context.keys, unit.identity.account_sid)
    assert (claims.identity, body["guestKey"]) == ("ann", key)
    # another browser, with no key or its own, cannot take the name, even with another invite,
    # and whether ann is connected or not
    other_invite = create_invite(unit.identity.auth_token, "party", ttl=3600)
    for form_key in (None, "k" * 43):
        stolen = await redeem(unit, other_invite, "ann", form_key)
        assert stolen.status == 409 and (await stolen.json())["code"] == 53200
    await unit.context.rooms.connect("ann", "party")
    for form_key in (None, "k" * 43):
        stolen = await redeem(unit, other_invite, "ann", form_key)
        assert stolen.status == 409 and (await stolen.json())["code"] == 53200
    # ann's own browser (a reload while its old connection lingers) still gets a token
    assert (await redeem(unit, invite, "ann", key)).status == 201
    # a browser may bring its own key (kept in sessionStorage) on the first redemption
    mine = "b" * 40
    assert (await redeem(unit, invite, "bea", mine)).status == 201
    assert (await redeem(unit, invite, "bea", mine)).status == 201
    bad = await redeem(unit, invite, "cid", "short")
    assert bad.status == 400 and (await bad.json())["code"] == 20001


async def test_an_invite_admits_a_limited_number_of_guests(unit: Unit) -> None:
    invite = create_invite(unit.identity.auth_token, "party", ttl=3600, guests=2)
    keys = []
    for name in ("g1", "g2"):
        resp = await redeem(unit, invite, name)
        assert resp.status == 201
        keys.append((await resp.json())["guestKey"])
    full = await redeem(unit, invite, "g3")
    assert full.status == 403 and (await full.json())["code"] == 53105
    # the guests it admitted still come back
    assert (await redeem(unit, invite, "g1", keys[0])).status == 201
    # the default limit is a few guests, not a room's worth
    default = create_invite(unit.identity.auth_token, "party", ttl=3600)
    names = [f"d{i}" for i in range(DEFAULT_INVITE_GUESTS + 1)]
    statuses = [(await redeem(unit, default, name)).status for name in names]
    assert statuses == [201] * DEFAULT_INVITE_GUESTS + [403]


@pytest.mark.parametrize(
    ("room", "guests", "code"),
    [("x" * 129, 5, 53102), ("a/b", 5, 53101), ("party", 0, 20001), ("party", 51, 20001)],
)
def test_invite_creation_refuses_what_could_never_join(room: str, guests: int, code: int) -> None:
    with pytest.raises(TwilioError) as info:
        create_invite("an-auth-token-of-at-least-32-bytes!", room, guests=guests)
    assert info.value.code == code


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
        ({"Invite": "", "Identity": "g"}, 401, 20101),
        ({"Invite": good, "Identity": "g", "Room": "other"}, 400, 20001),
    ]
    for form, status, code in cases:
        resp = await unit.client.post("/v1/Invites/Redeem", data=form)
        assert resp.status == status, form
        assert (await resp.json())["code"] == code, form
    # none of the refusals recorded a redemption
    assert (await redeem(unit, good, "g")).status == 201


async def test_a_revoked_invite_redeems_nothing(unit: Unit) -> None:
    from edge_sfu.invites import verify_invite
    from edge_sfu.rooms.model import utcnow

    invite = create_invite(unit.identity.auth_token, "party", ttl=3600, guests=3)
    made = verify_invite(invite, unit.identity.auth_token)
    store = unit.context.store
    store.record_invite(made.invite_id, "party", 3, made.expires_at)
    assert (await redeem(unit, invite, "early")).status == 201
    (listed,) = store.list_invites(utcnow())
    assert (listed.invite_id, listed.used, listed.revoked) == (made.invite_id, 1, None)
    assert store.revoke_invite(made.invite_id, utcnow())
    assert not store.revoke_invite("no-such-invite", utcnow())
    resp = await redeem(unit, invite, "late")
    assert resp.status == 401
    body = await resp.json()
    assert body["code"] == 20110 and "revoked" in body["message"]
    # The guest it admitted before is refused too: the invite is no credential any more.
    assert (await redeem(unit, invite, "early")).status == 401
    assert store.list_invites(utcnow())[0].revoked is not None
