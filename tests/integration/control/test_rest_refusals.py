"""Every refusal of the REST API: a 4xx with Twilio's error JSON, and nothing changes."""

from __future__ import annotations

import base64

import pytest

from tests.support.sfu import Unit


async def error_of(resp) -> dict:
    body = await resp.json()
    assert set(body) == {"code", "message", "more_info", "status"}, body
    assert body["status"] == resp.status and 400 <= resp.status < 500
    assert body["more_info"].endswith(str(body["code"]))
    return body


async def room_count(unit: Unit) -> int:
    resp = await unit.client.get("/v1/Rooms", headers=unit.auth)
    return len((await resp.json())["rooms"])


# -- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer abc",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"SK00000000000000000000000000000000:wrong").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
    ],
)
async def test_bad_credentials_are_20003(unit: Unit, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    resp = await unit.client.post("/v1/Rooms", data={"UniqueName": "x"}, headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    assert (await error_of(resp))["code"] == 20003
    assert await room_count(unit) == 0


async def test_wrong_secret_of_a_real_key_is_refused(unit: Unit) -> None:
    raw = f"{unit.key.sid}:{unit.key.secret}x".encode()
    resp = await unit.client.get(
        "/v1/Rooms", headers={"Authorization": "Basic " + base64.b64encode(raw).decode()}
    )
    assert resp.status == 401


async def test_revoked_key_is_refused(unit: Unit) -> None:
    unit.context.keys.revoke(unit.key.sid)
    resp = await unit.client.get("/v1/Rooms", headers=unit.auth)
    assert resp.status == 401


# -- rooms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"Type": "go"}, 53108),
        ({"Type": "small"}, 53108),
        ({"MaxParticipants": "0"}, 53107),
        ({"MaxParticipants": "51"}, 53107),
        ({"MaxParticipants": "many"}, 53107),
        ({"UniqueName": "x" * 129}, 53102),
        ({"UniqueName": "a/b"}, 53101),
        ({"UniqueName": "RM" + "a" * 32}, 53101),
        ({"UniqueName": "."}, 53101),  # could be created, never fetched: /v1/Rooms/. is /v1/Rooms/
        ({"UniqueName": ".."}, 53101),
        ({"UniqueName": "a\u202eb"}, 53101),  # the same rule as names from signaling
        ({"UniqueName": ""}, 53102),
        ({"EmptyRoomTimeout": "0"}, 20001),
        ({"UnusedRoomTimeout": "61"}, 20001),
        ({"MaxParticipantDuration": "599"}, 20001),
        ({"StatusCallback": "ftp://example.com/x"}, 20001),
        ({"StatusCallback": "not a url"}, 20001),
        ({"StatusCallbackMethod": "PUT"}, 20001),
        ({"AudioOnly": "yes"}, 20001),
        ({"VideoCodecs": "VP9"}, 20001),
        ({"RecordingRules": '[{"type": "include"}]'}, 53120),
        ({"RecordingRules": "{not json"}, 53120),
        ({"Bogus": "1"}, 20001),
        ({"UniqueName": "'; DROP TABLE rooms; --", "Type": "go"}, 53108),
    ],
)
async def test_create_room_refusals(unit: Unit, form: dict[str, str], code: int) -> None:
    resp = await unit.client.post("/v1/Rooms", data=form, headers=unit.auth)
    assert resp.status == 400, await resp.text()
    assert (await error_of(resp))["code"] == code
    assert await room_count(unit) == 0


async def test_sql_looking_names_are_just_names(unit: Unit) -> None:
    name = "x' OR '1'='1"
    resp = await unit.client.post("/v1/Rooms", data={"UniqueName": name}, headers=unit.auth)
    assert resp.status == 201
    resp = await unit.client.get(
        "/v1/Rooms", params={"UniqueName": "nothing' OR '1'='1"}, headers=unit.auth
    )
    assert (await resp.json())["rooms"] == []
    resp = await unit.client.get("/v1/Rooms", params={"UniqueName": name}, headers=unit.auth)
    assert [r["unique_name"] for r in (await resp.json())["rooms"]] == [name]


async def test_duplicate_unique_name_is_53113(unit: Unit) -> None:
    await unit.client.post("/v1/Rooms", data={"UniqueName": "dup"}, headers=unit.auth)
    resp = await unit.client.post("/v1/Rooms", data={"UniqueName": "dup"}, headers=unit.auth)
    assert resp.status == 400 and (await error_of(resp))["code"] == 53113
    assert await room_count(unit) == 1


async def test_malformed_bodies(unit: Unit) -> None:
    h = {**unit.auth, "Content-Type": "application/x-www-form-urlencoded"}
    for body in (b"%ff%fe=1", b"=&=&", b"UniqueName", b"\xff\xfe", b"a=1&" * 100):
        resp = await unit.client.post("/v1/Rooms", data=body, headers=h)
        assert resp.status == 400, body
        await error_of(resp)
    resp = await unit.client.post(
        "/v1/Rooms",
        data=b'{"UniqueName": "x"}',
        headers={**unit.auth, "Content-Type": "application/json"},
    )
    assert resp.status == 415
    await error_of(resp)
    resp = await unit.client.post("/v1/Rooms", data="UniqueName=a&UniqueName=b", headers=h)
    assert resp.status == 400
    assert await room_count(unit) == 0


async def test_huge_body_is_413(unit: Unit) -> None:
    h = {**unit.auth, "Content-Type": "application/x-www-form-urlencoded"}
    resp = await unit.client.post("/v1/Rooms", data=b"UniqueName=" + b"x" * (1 << 20), headers=h)
    assert resp.status == 413
    await error_of(resp)
    assert await room_count(unit) == 0


async def test_list_filter_refusals(unit: Unit) -> None:
    for params in (
        {"Status": "open"},
        {"DateCreatedAfter": "yesterday"},
        {"PageSize": "0"},
        {"PageSize": "1001"},
        {"Page": "-1"},
        {"Colour": "red"},
        # valid ISO 8601, but before year 1 once in UTC (an OverflowError, not a 500)
        {"DateCreatedAfter": "0001-01-01T00:00:00+01:00"},
        {"DateCreatedBefore": "9999-12-31T23:59:59-01:00"},
    ):
        resp = await unit.client.get("/v1/Rooms", params=params, headers=unit.auth)
        assert resp.status == 400, params
        await error_of(resp)
    p = await unit.context.rooms.connect("alice", "r")
    resp = await unit.client.get(
        f"/v1/Rooms/{p.room_sid}/Participants",
        params={"DateCreatedAfter": "0001-01-01T00:00:00+01:00"},
        headers=unit.auth,
    )
    assert resp.status == 400
    await error_of(resp)


async def test_unknown_room_is_20404(unit: Unit) -> None:
    for path in (
        "/v1/Rooms/RM" + "0" * 32,
        "/v1/Rooms/nope",
        "/v1/Rooms/nope/Participants",
        "/v1/Rooms/nope/RecordingRules",
    ):
        resp = await unit.client.get(path, headers=unit.auth)
        assert resp.status == 404, path
        assert (await error_of(resp))["code"] == 20404


async def test_unknown_route_and_method(unit: Unit) -> None:
    resp = await unit.client.get("/v1/Nothing", headers=unit.auth)
    assert resp.status == 404
    await error_of(resp)
    resp = await unit.client.delete("/v1/Rooms", headers=unit.auth)
    assert resp.status == 405
    await error_of(resp)


async def test_update_room_needs_status_completed(unit: Unit) -> None:
    p = await unit.context.rooms.connect("alice", "r")
    for form in ({}, {"Status": "in-progress"}, {"Status": "completed", "Extra": "1"}):
        resp = await unit.client.post(f"/v1/Rooms/{p.room_sid}", data=form, headers=unit.auth)
        assert resp.status == 400
        await error_of(resp)
    assert p.status == "connected"


async def test_completed_room_refuses_joins_53118_and_rule_changes(unit: Unit) -> None:
    p = await unit.context.rooms.connect("alice", "r")
    resp = await unit.client.post(
        f"/v1/Rooms/{p.room_sid}", data={"Status": "completed"}, headers=unit.auth
    )
    assert resp.status == 200 and p.status == "disconnected"
    resp = await unit.client.post(
        f"/v1/Rooms/{p.room_sid}/RecordingRules",
        data={"Rules": '[{"type":"include","all":true}]'},
        headers=unit.auth,
    )
    assert resp.status == 400 and (await error_of(resp))["code"] == 53118
    from edge_sfu.errors import RoomError

    with pytest.raises(RoomError) as info:
        await unit.context.rooms.connect("bob", p.room_sid)
    assert info.value.code == 53118


async def test_full_room_53105_and_duplicate_identity_53205_seen_over_rest(unit: Unit) -> None:
    svc = unit.context.rooms
    first = await svc.connect("alice", "full")
    await svc.connect("bob", "full")
    await svc.connect("carol", "full")
    from edge_sfu.errors import RoomError

    with pytest.raises(RoomError) as info:
        await svc.connect("dave", "full")
    assert info.value.code == 53105
    second = await svc.connect("alice", "full")  # same identity: the first is pushed out
    resp = await unit.client.get(f"/v1/Rooms/{first.room_sid}/Participants", headers=unit.auth)
    by_sid = {p["sid"]: p for p in (await resp.json())["participants"]}
    assert by_sid[first.sid]["status"] == "disconnected"
    assert by_sid[second.sid]["status"] == "connected"
    assert len(by_sid) == 4


# -- participants and rules --------------------------------------------------------------


async def test_participant_refusals(unit: Unit) -> None:
    p = await unit.context.rooms.connect("alice", "r")
    base = f"/v1/Rooms/{p.room_sid}/Participants"
    resp = await unit.client.post(
        f"{base}/{p.sid}", data={"Status": "connected"}, headers=unit.auth
    )
    assert resp.status == 400
    resp = await unit.client.get(f"{base}/PA" + "0" * 32, headers=unit.auth)
    assert resp.status == 404
    resp = await unit.client.get(base, params={"Status": "gone"}, headers=unit.auth)
    assert resp.status == 400
    for rules in (
        "[]",
        "nope",
        '[{"type":"include","kind":"smell"}]',
        '[{"type":"include","all":true,"x":1}]',
    ):
        resp = await unit.client.post(
            f"{base}/{p.sid}/SubscribeRules", data={"Rules": rules}, headers=unit.auth
        )
        assert resp.status == 400 and (await error_of(resp))["code"] == 53215, rules
    resp = await unit.client.post(f"{base}/{p.sid}/SubscribeRules", data={}, headers=unit.auth)
    assert resp.status == 400
    assert p.subscribe_rules == [{"type": "include", "all": True}]
    for rules in ("[]", '[{"type":"include","kind":"data"}]'):
        resp = await unit.client.post(
            f"/v1/Rooms/{p.room_sid}/RecordingRules", data={"Rules": rules}, headers=unit.auth
        )
        assert resp.status == 400 and (await error_of(resp))["code"] == 53120
    assert p.status == "connected"


async def test_kick_over_rest_disconnects_with_a_reason(unit: Unit) -> None:
    seen = []
    unit.context.rooms.add_listener(seen.append)
    p = await unit.context.rooms.connect("alice", "r")
    resp = await unit.client.post(
        f"/v1/Rooms/{p.room_sid}/Participants/alice",
        data={"Status": "disconnected"},
        headers=unit.auth,
    )
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "disconnected" and body["sid"] == p.sid
    assert seen[-1].reason_code == 53204


async def test_status_callback_may_not_point_at_the_unit_itself(unit: Unit) -> None:
    port = unit.client.port
    for own in (
        f"{unit.base}/admin/system/factory-reset",
        f"http://localhost:{port}/v1/Rooms",
        f"http://[::1]:{port}/admin/",
        f"http://0.0.0.0:{port}/v1/Tokens",
        f"http://LOCALHOST.:{port}/x",
    ):
        resp = await unit.client.post("/v1/Rooms", data={"StatusCallback": own}, headers=unit.auth)
        assert resp.status == 400, own
        assert (await error_of(resp))["code"] == 20001
    assert await room_count(unit) == 0
    # A hub on the LAN, or another service on this machine, is a real use.
    for other in ("http://127.0.0.1:9/hook", "http://192.168.1.20/hook", "https://10.0.0.2/h"):
        resp = await unit.client.post(
            "/v1/Rooms", data={"StatusCallback": other}, headers=unit.auth
        )
        assert resp.status == 201, other
