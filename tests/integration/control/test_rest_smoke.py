"""The REST API answers with Twilio's shapes."""

from __future__ import annotations

from tests.support.sfu import Unit


async def test_create_fetch_list_complete(unit: Unit) -> None:
    c = unit.client
    resp = await c.post("/v1/Rooms", data={"UniqueName": "lobby"}, headers=unit.auth)
    assert resp.status == 201, await resp.text()
    room = await resp.json()
    assert room["unique_name"] == "lobby" and room["status"] == "in-progress"
    assert room["url"].endswith(f"/v1/Rooms/{room['sid']}")
    resp = await c.get("/v1/Rooms/lobby", headers=unit.auth)
    assert (await resp.json())["sid"] == room["sid"]
    resp = await c.get("/v1/Rooms", headers=unit.auth)
    page = await resp.json()
    assert page["meta"]["key"] == "rooms" and page["rooms"][0]["sid"] == room["sid"]
    resp = await c.post(f"/v1/Rooms/{room['sid']}", data={"Status": "completed"}, headers=unit.auth)
    assert (await resp.json())["status"] == "completed"
