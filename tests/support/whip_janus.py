"""A WHIP endpoint in front of Janus's VideoRoom, doing what Debian's ``simple-whip-server``
does (it cannot be installed beside this machine's Node.js: see docs/roles.md).

``POST /whip/endpoint/{id}`` with ``Authorization: Bearer <token>`` and an SDP offer joins
Janus's room as a publisher with that offer and answers ``201 Created`` with Janus's SDP
answer and the session's ``Location``; ``DELETE`` on it leaves the room. The media goes to
Janus and only to Janus: this front never touches it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from tests.support.janus import Janus, JanusRoom
from tests.support.web import served


@dataclass
class WhipFront:
    url: str
    room: JanusRoom
    token: str
    sessions: dict[str, int] = field(default_factory=dict)  # resource id -> Janus handle
    deleted: list[str] = field(default_factory=list)
    refused: int = 0


@asynccontextmanager
async def whip_in_front_of_janus(token: str, bitrate: int = 0) -> AsyncIterator[WhipFront]:
    """Janus with one H.264/Opus room (publishers capped at ``bitrate``, 0: not), and a WHIP
    endpoint into it on 127.0.0.1."""
    janus = Janus()
    await janus.start()
    room = JanusRoom(janus, bitrate)
    await room.create()
    app = web.Application()
    front = WhipFront("", room, token)

    async def publish(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {front.token}":
            front.refused += 1
            return web.Response(status=401, text="unauthorized")
        if request.content_type != "application/sdp":
            return web.Response(status=415)
        answer = await room.publish(await request.text())
        resource = uuid.uuid4().hex
        front.sessions[resource] = room.feed
        return web.Response(
            status=201,
            text=answer,
            content_type="application/sdp",
            headers={"Location": f"/whip/resource/{resource}", "ETag": f'"{resource}"'},
        )

    async def delete(request: web.Request) -> web.Response:
        resource = request.match_info["resource"]
        if front.sessions.pop(resource, None) is None:
            return web.Response(status=404)
        front.deleted.append(resource)
        return web.Response(status=200)

    app.router.add_post("/whip/endpoint/{id}", publish)
    app.router.add_delete("/whip/resource/{resource}", delete)
    try:
        async with served(app) as base:
            front.url = f"{base}/whip/endpoint/field"
            yield front
    finally:
        await janus.close()
