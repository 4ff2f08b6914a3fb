"""A join the server refuses gets Twilio's code for the reason, never 53000."""

from __future__ import annotations

import json
import time

import aiohttp
import jwt
import pytest

pytestmark = pytest.mark.timeout(60)


async def _join(sfu, message: dict[str, object]) -> tuple[dict[str, object], int | None]:
    async with aiohttp.ClientSession() as http, http.ws_connect(sfu.ws_url) as ws:
        await ws.send_str(json.dumps({"type": "join", "version": 1, **message}))
        reply = json.loads((await ws.receive(timeout=10)).data)
        await ws.receive(timeout=10)
        return reply, ws.close_code


def _string_time_token(sfu, claim: str) -> str:
    key, now = sfu.identity.signing_key, int(time.time())
    payload = {
        "iss": key.sid,
        "sub": sfu.identity.account_sid,
        "nbf": now,
        "exp": now + 600,
        "grants": {"identity": "t", "video": {"room": "room1"}},
    }
    payload[claim] = str(payload[claim])
    return jwt.encode(payload, key.secret, algorithm="HS256", headers={"cty": "twilio-fpa;v=1"})


async def test_malformed_tokens_are_20101(sfu, caplog) -> None:
    for token in ("\ud800", _string_time_token(sfu, "exp"), _string_time_token(sfu, "nbf")):
        reply, _ = await _join(sfu, {"token": token})
        assert reply["type"] == "disconnected" and reply["code"] == 20101, reply
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("room", ["a\u202eb", "zero\u200bwidth", ".", "..", "line\u2028sep"])
async def test_room_names_follow_the_rest_rule(sfu, room: str) -> None:
    reply, _ = await _join(sfu, {"token": sfu.token("n", room=None), "room": room})
    assert reply["type"] == "disconnected" and reply["code"] == 53101, reply
    assert sfu.context.rooms.live_room_by_name(room) is None
