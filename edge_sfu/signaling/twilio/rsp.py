"""The wire format twilio-video.js speaks: its framing (hello/welcome/msg/heartbeat/bye/bad)
and the room signaling protocol v2 bodies inside ``msg`` (connect, update, sync,
disconnect, ice). ``docs/twilio-migration.md`` documents what the unit implements.

Parsing is strict about what the server acts on (types, revisions, sizes) and ignores
fields it does not use: the SDK sends more than the unit needs, and newer SDKs add more.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

#: The framing's version (``hello.version``) and the room signaling protocol's.
FRAMING_VERSION = 2
RSP_VERSION = 2
ICE_VERSION = 1
#: Frames larger than this are refused by the WebSocket layer (a full room's offer fits).
MAX_FRAME_BYTES = 262144
MAX_TRACKS = 32
MAX_SDP_BYTES = 200_000
MAX_CANDIDATES = 64
PRIORITIES = ("low", "standard", "high")
KINDS = ("audio", "video", "data")

#: Twilio error codes sent in-band.
SIGNALING_ERROR = 53000
INVALID_CLIENT_MESSAGE = 53004
PARTICIPANT_NOT_FOUND = 53204
SERVER_REMOTE_DESC_FAILED = 53403


class TokenBucket:
    """At most ``rate`` client messages a second, in bursts of twice that: a flood is
    refused message by message, and the session goes on."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = rate * 2
        self._at = time.monotonic()

    def allow(self) -> bool:
        """Whether one more message may be handled now (it takes a token)."""
        now = time.monotonic()
        self._tokens = min(self.rate * 2, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class FrameError(ValueError):
    """A frame or body the server cannot act on: answered with ``bad``."""


@dataclass(frozen=True)
class TrackState:
    """One of the client's tracks as it announces it in ``participant.tracks``."""

    id: str
    kind: str
    name: str
    enabled: bool
    priority: str


@dataclass(frozen=True)
class Description:
    """A peer connection's description: ``offer``, ``answer``, ``close`` (or other types)."""

    type: str
    revision: int
    sdp: str | None


@dataclass(frozen=True)
class PeerConnection:
    """One entry of ``peer_connections``: a description, trickled candidates, or both."""

    id: str
    description: Description | None = None
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Body:
    """An RSP body from the client (connect, update, sync, disconnect, ice)."""

    type: str
    name: str | None = None
    token: str | None = None
    session: str | None = None
    revision: int | None = None  # participant.revision
    tracks: tuple[TrackState, ...] | None = None
    peer_connections: tuple[PeerConnection, ...] = ()
    ice_servers: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def _str(value: object, what: str, *, limit: int = 256) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise FrameError(f"{what} must be a string of at most {limit} characters")
    return value


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise FrameError(f"{what} must be a non-negative integer")
    return value


def parse_frame(raw: str | bytes) -> dict[str, Any]:
    """One framing message (a JSON object with a string ``type``)."""
    if isinstance(raw, bytes):
        raise FrameError("binary frames are not part of the protocol")
    try:
        frame = json.loads(raw)
    except ValueError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError("a frame must be a JSON object with a string type")
    return frame


def parse_body(body: object) -> Body:
    """An RSP body, validated as far as the server acts on it."""
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise FrameError("a body must be a JSON object with a string type")
    kind = body["type"]
    if kind not in ("connect", "update", "sync", "disconnect", "ice"):
        raise FrameError(f"unknown body type {kind[:40]!r}")
    name = body.get("name")
    participant = body.get("participant")
    revision: int | None = None
    tracks: tuple[TrackState, ...] | None = None
    if participant is not None:
        if not isinstance(participant, dict):
            raise FrameError("participant must be an object")
        revision = _int(participant.get("revision", 0), "participant.revision")
        if "tracks" in participant:
            tracks = _tracks(participant["tracks"])
    pcs = body.get("peer_connections", [])
    if not isinstance(pcs, list) or len(pcs) > 4:
        raise FrameError("peer_connections must be a list of at most 4")
    token = body.get("token")
    session = body.get("session")
    ice = body.get("ice_servers")
    return Body(
        type=kind,
        name=None if name is None else _str(name, "name", limit=128),
        token=None if token is None else _str(token, "token", limit=8192),
        session=None if session is None else _str(session, "session", limit=128),
        revision=revision,
        tracks=tracks,
        peer_connections=tuple(_peer_connection(pc) for pc in pcs),
        ice_servers=ice if isinstance(ice, str) else None,
        raw=body,
    )


def _tracks(items: object) -> tuple[TrackState, ...]:
    if not isinstance(items, list) or len(items) > MAX_TRACKS:
        raise FrameError(f"participant.tracks must be a list of at most {MAX_TRACKS}")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise FrameError("a track must be an object")
        kind = item.get("kind")
        if kind not in KINDS:
            raise FrameError("track kind must be audio, video or data")
        priority = item.get("priority", "standard")
        if priority not in PRIORITIES:
            raise FrameError("track priority must be low, standard or high")
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            raise FrameError("track enabled must be a boolean")
        track_id = _str(item.get("id"), "track id", limit=128)
        out.append(
            TrackState(
                id=track_id,
                kind=str(kind),
                name=_str(item.get("name", track_id), "track name", limit=128),
                enabled=enabled,
                priority=str(priority),
            )
        )
    if len({t.id for t in out}) != len(out):
        raise FrameError("track ids must be unique")
    return tuple(out)


def _peer_connection(item: object) -> PeerConnection:
    if not isinstance(item, dict):
        raise FrameError("a peer connection must be an object")
    pc_id = _str(item.get("id"), "peer connection id", limit=128)
    description = None
    raw = item.get("description")
    if raw is not None:
        if not isinstance(raw, dict):
            raise FrameError("description must be an object")
        sdp = raw.get("sdp")
        if sdp is not None:
            sdp = _str(sdp, "sdp", limit=MAX_SDP_BYTES)
        description = Description(
            type=_str(raw.get("type"), "description type", limit=16),
            revision=_int(raw.get("revision", 0), "description revision"),
            sdp=sdp,
        )
    candidates: tuple[str, ...] = ()
    ice = item.get("ice")
    if ice is not None:
        if not isinstance(ice, dict) or not isinstance(ice.get("candidates", []), list):
            raise FrameError("ice must be an object with a candidates list")
        listed = ice.get("candidates", [])
        if len(listed) > MAX_CANDIDATES:
            raise FrameError(f"at most {MAX_CANDIDATES} candidates")
        candidates = tuple(
            _str(c.get("candidate") if isinstance(c, dict) else None, "candidate", limit=1024)
            for c in listed
        )
    return PeerConnection(pc_id, description, tuple(c for c in candidates if c))


# -- server messages ----------------------------------------------------------------


def welcome(timeout_ms: int) -> dict[str, Any]:
    """The answer to ``hello``."""
    return {"type": "welcome", "negotiatedTimeout": timeout_ms}


def msg(body: dict[str, Any]) -> dict[str, Any]:
    """A body in the framing's ``msg``."""
    return {"type": "msg", "body": body}


def heartbeat() -> dict[str, Any]:
    """A sign of life."""
    return {"type": "heartbeat"}


def bad(reason: str) -> dict[str, Any]:
    """A frame the server could not act on (the session goes on)."""
    return {"type": "bad", "reason": reason[:300]}


def error(code: int, message: str) -> dict[str, Any]:
    """An in-band error: the client disconnects with Twilio error ``code``."""
    return msg({"type": "error", "code": code, "message": message[:300]})


def encode(message: dict[str, Any]) -> str:
    """One frame's text."""
    return json.dumps(message, separators=(",", ":"))
