"""The session state machine, driven by hypothesis with arbitrary sequences of frames,
socket drops, reconnections, removals and passing time (a fake clock, no sockets)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sfu.signaling import protocol as p
from edge_sfu.signaling.session import MAX_ERRORS, SignalingSession, SignalingSettings, State

SETTINGS = SignalingSettings(heartbeat_interval=5, heartbeat_timeout=12, reconnect_window=30)
SID = "MT" + "0" * 32


@dataclass
class FakeLink:
    sent: list[dict[str, Any]] = field(default_factory=list)
    closed: tuple[int, str] | None = None

    def send(self, message: dict[str, Any]) -> bool:
        if self.closed is None:
            self.sent.append(message)
            return True
        return False

    async def close(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = (code, reason)


@dataclass
class FakeParticipation:
    sid: str = "PA" + "1" * 32
    calls: list[str] = field(default_factory=list)
    left: list[int | None] = field(default_factory=list)
    problem_now: tuple[int, str] | None = None

    def snapshot(self) -> dict[str, Any]:
        return {"room": {"sid": "RM", "name": "r"}, "participant": {}, "participants": []}

    async def answer(self, message: p.Answer) -> None:
        self.calls.append("answer")
        if message.negotiation != 1:
            raise p.ProtocolError("no such offer")

    async def publish(self, message: p.Publish) -> None:
        self.calls.append("publish")

    async def unpublish(self, message: p.Unpublish) -> None:
        self.calls.append("unpublish")

    async def set_enabled(self, message: p.SetEnabled) -> None:
        self.calls.append("set_enabled")

    async def set_render_size(self, message: p.SetRenderSize) -> None:
        self.calls.append("set_render_size")

    def problem(self, now: float, answer_timeout: float) -> tuple[int, str] | None:
        return self.problem_now

    async def suspended(self) -> None:
        self.calls.append("suspended")

    async def resumed(self) -> None:
        self.calls.append("resumed")

    async def leave(self, reason_code: int | None) -> None:
        self.calls.append("leave")
        self.left.append(reason_code)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[SignalingSession, FakeParticipation, FakeLink, Clock]:
    clock = Clock()
    participation = FakeParticipation()
    session = SignalingSession(participation, "token", SETTINGS, clock=clock)
    link = FakeLink()
    assert session.attach(link)
    return session, participation, link, clock


GOOD = [
    {"type": "ping", "ref": 1},
    {"type": "pong", "ref": 1},
    {"type": "answer", "negotiation": 1, "sdp": "v=0\r\n"},
    {"type": "publish", "tracks": [{"client_id": "c", "kind": "video"}]},
    {"type": "unpublish", "track_sid": SID},
    {"type": "set-enabled", "track_sid": SID, "enabled": False},
    {"type": "set-render-size", "track_sid": SID, "width": 320, "height": 240},
]
BAD = [
    "garbage",
    {"type": "join", "version": 1, "token": "t"},  # out of order
    {"type": "answer", "negotiation": 2, "sdp": "v=0\r\n"},  # answers nothing
    {"type": "bogus"},
    {"type": "ping", "x": 1},
]
FATAL = [b"\x00binary", {"type": "join", "version": 7}]

frames = st.sampled_from(GOOD + BAD + FATAL + [{"type": "leave"}]).map(
    lambda m: m if isinstance(m, str | bytes) else json.dumps(m)
)
ops = st.one_of(
    st.tuples(st.just("frame"), frames),
    st.tuples(st.just("drop"), st.none()),
    st.tuples(st.just("reattach"), st.none()),
    st.tuples(st.just("time"), st.floats(min_value=0, max_value=20)),
    st.tuples(st.just("kick"), st.sampled_from([53118, 53205, 53204])),
)


async def run(sequence: list[tuple[str, Any]]) -> None:
    session, participation, link, clock = make()
    links = [link]
    for op, arg in sequence:
        before = session.state
        calls_before = len(participation.calls)
        if op == "frame":
            await session.receive(links[-1], arg)
        elif op == "drop":  # the socket closed under us
            await links[-1].close(1006, "gone")
            await session.link_lost(links[-1])
        elif op == "reattach":  # a new socket with the reconnect token (as the service does)
            old = session.link
            links.append(FakeLink())
            attached = session.attach(links[-1])
            assert attached == (before is not State.CLOSED)
            if attached and old is not None:
                await old.close(p.CLOSE_REPLACED, "replaced")
            elif not attached:
                await links[-1].close(p.CLOSE_REFUSED, "refused")
        elif op == "time":
            clock.now += arg
            await session.tick()
        elif op == "kick":
            await session.close(arg, "removed")
        _check(session, participation, links, before, calls_before, op)
    # Whatever happened, enough time ends every session, exactly once.
    await session.link_lost(links[-1])
    clock.now += SETTINGS.reconnect_window + 1
    await session.tick()
    assert session.state is State.CLOSED
    assert participation.calls.count("leave") == 1


def _check(session, participation, links, before, calls_before, op) -> None:
    if before is State.CLOSED:
        assert session.state is State.CLOSED
        assert len(participation.calls) == calls_before  # nothing reaches a closed session
    if session.state is State.CLOSED:
        assert participation.calls.count("leave") == 1
        assert all(link.closed is not None for link in links)
    if before is State.RECONNECTING and op == "frame":
        assert session.state is State.RECONNECTING  # a dead socket's frames are ignored
        assert len(participation.calls) == calls_before
    if session.state is State.JOINED:
        assert session.link is links[-1] and links[-1].closed is None
        assert participation.calls.count("leave") == 0
    if session.state is State.RECONNECTING:
        assert session.link is None
    if before is State.JOINED and session.state is State.RECONNECTING:
        assert participation.calls[-1] == "suspended"


@settings(max_examples=400, deadline=None)
@given(st.lists(ops, max_size=40))
def test_any_sequence_keeps_the_invariants(sequence):
    asyncio.run(run(sequence))


async def test_join_sends_joined_with_the_timers():
    _session, _participation, link, _clock = make()
    (joined,) = link.sent
    assert joined["type"] == "joined" and joined["version"] == 1
    assert joined["reconnect_token"] == "token"
    assert joined["heartbeat_interval"] == 5 and joined["reconnect_window"] == 30


async def test_errors_do_not_end_the_session_but_fatal_ones_do():
    session, participation, link, _clock = make()
    await session.receive(link, json.dumps({"type": "bogus", "ref": "q"}))
    assert link.sent[-1] == {
        "type": "error",
        "code": 53004,
        "message": "unknown message type 'bogus'",
        "ref": "q",
    }
    assert session.state is State.JOINED
    await session.receive(link, b"\x01")
    assert session.state is State.CLOSED and link.closed[0] == p.CLOSE_PROTOCOL
    assert link.sent[-1]["type"] == "disconnected" and participation.left == [53004]


async def test_too_many_errors_disconnect():
    session, _participation, link, _clock = make()
    for _ in range(MAX_ERRORS + 1):
        await session.receive(link, "{")
    assert session.state is State.CLOSED and link.sent[-1]["message"] == "too many invalid messages"


async def test_heartbeats_and_silence():
    session, participation, link, clock = make()
    clock.now += 5
    await session.tick()
    assert link.sent[-1] == {"type": "ping", "ref": 1}
    await session.receive(link, json.dumps({"type": "ping", "ref": "c"}))
    assert link.sent[-1] == {"type": "pong", "ref": "c"}
    clock.now += 12.5  # silence longer than the heartbeat timeout
    await session.tick()
    assert session.state is State.RECONNECTING and link.closed[0] == p.CLOSE_TIMEOUT
    assert participation.calls[-1] == "suspended"
    clock.now += 17  # 29.5 s since the last frame: still inside the window
    await session.tick()
    assert session.state is State.RECONNECTING
    again = FakeLink()
    assert session.attach(again) and again.sent[-1]["type"] == "joined"
    assert session.state is State.JOINED


async def test_window_counts_from_the_last_frame():
    session, participation, link, clock = make()
    await session.link_lost(link)
    clock.now += 30.1
    await session.tick()
    assert session.state is State.CLOSED and participation.left == [53002]
    assert not session.attach(FakeLink())


async def test_problems_disconnect_with_their_code():
    session, participation, link, _clock = make()
    participation.problem_now = (53402, "no answer")
    await session.tick()
    assert session.state is State.CLOSED and link.sent[-1]["code"] == 53402


async def test_leave_is_immediate_and_silent():
    session, participation, link, _clock = make()
    await session.receive(link, json.dumps({"type": "leave"}))
    assert session.state is State.CLOSED and participation.left == [None]
    assert link.closed == (p.CLOSE_NORMAL, "left")
    assert link.sent[-1]["type"] == "joined"


@pytest.mark.parametrize("code", [53118, 53205])
async def test_removal_tells_the_client_why(code):
    session, _participation, link, _clock = make()
    await session.close(code, "removed")
    assert link.sent[-1] == {"type": "disconnected", "code": code, "message": "removed"}
    assert link.closed[0] == p.CLOSE_REMOVED and link.closed[1].startswith(str(code))
