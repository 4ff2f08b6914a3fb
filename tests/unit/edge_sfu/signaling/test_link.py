"""``WebSocketLink``: what is queued goes out before the socket closes, whoever closes it.

The socket is a stand-in whose sends wait for the test to release them, so a slow flush
(a busy machine) is a state the test holds, not a timing it hopes for.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

from aiohttp import web

from edge_sfu.signaling import protocol as p
from edge_sfu.signaling.link import WebSocketLink


class GatedSocket:
    """Records what is sent; each ``send_str`` waits until ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[dict[str, Any]] = []
        self.closed_with: tuple[int, bytes] | None = None

    @property
    def closed(self) -> bool:
        return self.closed_with is not None

    async def send_str(self, text: str) -> None:
        await self.gate.wait()
        if self.closed:
            raise ConnectionResetError("Cannot write to closing transport")
        self.sent.append(json.loads(text))

    async def close(self, *, code: int, message: bytes) -> bool:
        if self.closed_with is None:
            self.closed_with = (code, message)
        return True


def link_on(socket: GatedSocket, queue_size: int = 8) -> WebSocketLink:
    return WebSocketLink(cast(web.WebSocketResponse, socket), queue_size, peer="test")


async def test_a_second_close_waits_for_the_first_to_flush():
    # The room ends: the session queues 'disconnected' and closes the link with 53118;
    # the route's reader ends meanwhile and closes the link too, then its handler returns
    # (and aiohttp drops the connection). That second close must not return first.
    socket = GatedSocket()
    link = link_on(socket)
    assert link.send(p.room_completed_message())
    assert link.send(p.disconnected_message(53118, "Room completed"))
    by_session = asyncio.create_task(link.close(p.CLOSE_REMOVED, "53118 Room completed"))
    await asyncio.sleep(0)
    by_route = asyncio.create_task(link.close(p.CLOSE_NORMAL, ""))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not by_route.done() and not by_session.done()
    assert socket.closed_with is None

    socket.gate.set()
    await asyncio.wait_for(asyncio.gather(by_session, by_route), 5)
    assert [m["type"] for m in socket.sent] == [p.MSG_ROOM_COMPLETED, p.MSG_DISCONNECTED]
    assert socket.sent[1]["code"] == 53118
    # The first decision's code and reason, not the route's plain close.
    assert socket.closed_with == (p.CLOSE_REMOVED, b"53118 Room completed")


async def test_closing_a_closed_link_returns_at_once():
    socket = GatedSocket()
    socket.gate.set()
    link = link_on(socket)
    await asyncio.wait_for(link.close(p.CLOSE_NORMAL, "bye"), 5)
    await asyncio.wait_for(link.close(p.CLOSE_REMOVED, "late"), 1)
    assert socket.closed_with == (p.CLOSE_NORMAL, b"bye")
    assert not link.send(p.ping_message(1))


async def test_an_overflow_drops_the_queue_and_closes_as_too_slow():
    socket = GatedSocket()
    link = link_on(socket, queue_size=2)
    assert link.send(p.ping_message(1))
    for _ in range(5):  # the writer takes it and waits on the gate
        await asyncio.sleep(0)
    sent = [link.send(p.ping_message(ref)) for ref in range(2, 6)]
    assert sent == [True, True, False, False]
    closing = asyncio.create_task(link.close(p.CLOSE_REMOVED, "ignored"))
    socket.gate.set()
    await asyncio.wait_for(closing, 5)
    assert [m["ref"] for m in socket.sent] == [1]  # what was queued behind it is dropped
    assert socket.closed_with is not None
    code, reason = socket.closed_with
    assert code == p.CLOSE_GOING_AWAY and b"too slow" in reason
