"""The signaling protocol, version 1: message shapes, limits, error codes and validation.

Every frame is one UTF-8 JSON object in a WebSocket *text* frame, with a ``type`` string.
Client messages are parsed into frozen dataclasses by ``parse_client_message``, which checks
every field (unknown fields included) and raises ``ProtocolError`` with a Twilio error code.
Server messages are plain dicts built by the ``*_message`` helpers at the bottom, so the wire
shape is visible in one place; ``docs/signaling.md`` documents both directions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..errors import SfuError

PROTOCOL_VERSION: Final = 1
#: WebSocket subprotocol a client may ask for; the version is also in ``join``.
SUBPROTOCOL: Final = "edge-sfu.v1"
#: Largest frame accepted, in bytes. A browser's answer takes about 1.5 KB and 40 lines per
#: m-line: a full room (50 participants, 100 m-lines) answers with about 150 KB.
MAX_FRAME_BYTES: Final = 256 * 1024
#: An SDP longer than this (lines) is refused before it reaches aiortc's parser.
MAX_SDP_LINES: Final = 6000
MAX_SDP_LINE_BYTES: Final = 4096
#: ICE candidates in one description: each one makes the SFU send connectivity checks to an
#: address the client chose, so a long list would turn the unit into a packet cannon.
MAX_SDP_CANDIDATES: Final = 64
MAX_TRACK_NAME: Final = 128
MAX_TRACKS_PER_MESSAGE: Final = 16
MAX_CLIENT_ID: Final = 64
MAX_DIMENSION: Final = 16384
MAX_REF_ID: Final = 64
#: Largest ``max_retransmits`` / ``max_packet_life_time`` (ms) of a data track.
MAX_DATA_RELIABILITY: Final = 65535

# Twilio error codes used by signaling (https://www.twilio.com/docs/api/errors/<code>).
SIGNALING_ERROR: Final = 53000
SIGNALING_DISCONNECTED: Final = 53001
SIGNALING_TIMEOUT: Final = 53002
INVALID_CLIENT_MESSAGE: Final = 53004
ROOM_CONNECT_FAILED: Final = 53104
ROOM_NOT_FOUND: Final = 53106
MAX_TRACKS_EXCEEDED: Final = 53203
TRACK_INVALID: Final = 53300
TRACK_NAME_INVALID: Final = 53301
TRACK_NAME_TOO_LONG: Final = 53302
TRACK_NAME_CHARS_INVALID: Final = 53303
SERVER_LOCAL_DESC_FAILED: Final = 53401
CLIENT_REMOTE_DESC_FAILED: Final = 53402
SERVER_REMOTE_DESC_FAILED: Final = 53403
MEDIA_NO_SUPPORTED_CODEC: Final = 53404
MEDIA_CONNECTION_FAILED: Final = 53405
TRACK_NAME_IN_USE: Final = 53304

# WebSocket close codes (application range 4000-4999): the reason text carries the Twilio code.
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_TOO_BIG: Final = 1009
CLOSE_PROTOCOL: Final = 4400
CLOSE_AUTH: Final = 4401
CLOSE_REFUSED: Final = 4403
CLOSE_TIMEOUT: Final = 4408
CLOSE_REPLACED: Final = 4409
CLOSE_REMOVED: Final = 4410

TrackKindName = Literal["audio", "video", "data"]
#: Codecs a publisher may pin its m-line to (what the forwarder carries).
CODECS: Final = {"audio": frozenset({"opus"}), "video": frozenset({"H264", "VP8"})}
_NAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:{}\-]{1,64}$")
_SDP_LINE = re.compile(r"^[a-z]=[^\r\n]*$")


class ProtocolError(SfuError, ValueError):
    """A client message broke the protocol. ``code`` is the Twilio error code to report;
    ``fatal`` says the connection must close (the session can no longer be trusted)."""

    def __init__(
        self,
        message: str,
        code: int = INVALID_CLIENT_MESSAGE,
        *,
        fatal: bool = False,
        ref: str | int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.fatal = fatal
        self.ref = ref


# ---------------------------------------------------------------- client -> server messages


@dataclass(frozen=True)
class Join:
    """First message: who joins (``token``) or who comes back (``reconnect_token``)."""

    version: int
    token: str | None
    reconnect_token: str | None
    room: str | None = None
    ref: str | int | None = None


@dataclass(frozen=True)
class Answer:
    """The client's SDP answer to the server's offer number ``negotiation``."""

    negotiation: int
    sdp: str
    ref: str | int | None = None


@dataclass(frozen=True)
class TrackRequest:
    """One local track the client wants to publish; ``client_id`` is its own handle."""

    client_id: str
    kind: TrackKindName
    name: str
    enabled: bool = True
    #: Restrict the m-line to one codec (a publisher of pre-encoded H.264 needs H264).
    codec: str | None = None
    #: Data tracks only: message order, and the retransmission limit (count or
    #: milliseconds, at most one of them) that makes the track lossy.
    ordered: bool = True
    max_retransmits: int | None = None
    max_packet_life_time: int | None = None


@dataclass(frozen=True)
class Publish:
    """Ask the server to receive these tracks (it answers ``published`` then an ``offer``)."""

    tracks: tuple[TrackRequest, ...]
    ref: str | int | None = None


@dataclass(frozen=True)
class Unpublish:
    """Stop publishing a track."""

    track_sid: str
    ref: str | int | None = None


@dataclass(frozen=True)
class SetEnabled:
    """Mute (``enabled=False``) or unmute one of the client's own published tracks."""

    track_sid: str
    enabled: bool
    ref: str | int | None = None


@dataclass(frozen=True)
class SetRenderSize:
    """The size the client renders a subscribed video track at (chooses the layer)."""

    track_sid: str
    width: int
    height: int
    ref: str | int | None = None


@dataclass(frozen=True)
class Ping:
    """Heartbeat; the other side answers ``pong`` with the same ``ref``."""

    ref: str | int | None = None


@dataclass(frozen=True)
class Pong:
    """Answer to a ``ping``."""

    ref: str | int | None = None


@dataclass(frozen=True)
class Leave:
    """The client leaves the room for good (no reconnect window)."""

    ref: str | int | None = None


ClientMessage = (
    Join | Answer | Publish | Unpublish | SetEnabled | SetRenderSize | Ping | Pong | Leave
)


def parse_client_message(data: str | bytes) -> ClientMessage:
    """Decode and validate one frame from a client, or raise ``ProtocolError``."""
    if isinstance(data, bytes):
        raise ProtocolError("binary frames are not part of the protocol", fatal=True)
    if len(data) > MAX_FRAME_BYTES or len(data.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame larger than {MAX_FRAME_BYTES} bytes", fatal=True)
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("frame is not valid JSON") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("a message must be a JSON object")
    ref = _ref(obj)
    kind = obj.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise ProtocolError(f"unknown message type {str(kind)[:40]!r}", ref=ref)
    try:
        return parser(_Fields(obj, ref))
    except ProtocolError as exc:
        exc.ref = ref
        raise


class _Fields:
    """Typed access to a message's fields that refuses unknown ones."""

    def __init__(self, obj: dict[str, Any], ref: str | int | None) -> None:
        self.obj = obj
        self.ref = ref
        self.type = str(obj["type"])

    def only(self, *allowed: str) -> None:
        extra = set(self.obj) - {"type", "ref", *allowed}
        if extra:
            raise ProtocolError(f"{self.type}: unknown field {sorted(extra)[0][:40]!r}")

    def text(self, name: str, *, max_len: int, optional: bool = False) -> str | None:
        value = self.obj.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value or len(value) > max_len:
            raise ProtocolError(f"{self.type}.{name} must be a string of 1 to {max_len} chars")
        return value

    def number(self, name: str, *, low: int, high: int) -> int:
        value = self.obj.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ProtocolError(f"{self.type}.{name} must be an integer {low}..{high}")
        return value

    def flag(self, name: str, default: bool | None = None) -> bool:
        value = self.obj.get(name, default)
        if not isinstance(value, bool):
            raise ProtocolError(f"{self.type}.{name} must be true or false")
        return value

    def sid(self, name: str) -> str:
        value = self.text(name, max_len=34)
        assert value is not None
        if not re.fullmatch(r"MT[0-9a-f]{32}", value):
            raise ProtocolError(f"{self.type}.{name} must be a track SID (MT...)")
        return value


def _ref(obj: dict[str, Any]) -> str | int | None:
    ref = obj.get("ref")
    if ref is None:
        return None
    if isinstance(ref, bool) or not isinstance(ref, str | int):
        raise ProtocolError("ref must be a string or an integer")
    if isinstance(ref, str) and len(ref) > MAX_REF_ID:
        raise ProtocolError(f"ref longer than {MAX_REF_ID} characters")
    if isinstance(ref, int) and not -(2**53) < ref < 2**53:
        raise ProtocolError("ref out of range")
    return ref


def _join(f: _Fields) -> Join:
    f.only("version", "token", "reconnect_token", "room")
    version = f.obj.get("version")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise ProtocolError(
            f"unsupported protocol version {str(version)[:10]!r}; this server speaks "
            f"{PROTOCOL_VERSION}",
            fatal=True,
        )
    token = f.text("token", max_len=8192, optional=True)
    again = f.text("reconnect_token", max_len=128, optional=True)
    room = f.text("room", max_len=128, optional=True)
    return Join(PROTOCOL_VERSION, token, again, room, ref=f.ref)


def _answer(f: _Fields) -> Answer:
    f.only("negotiation", "sdp")
    negotiation = f.number("negotiation", low=1, high=2**31)
    sdp = f.text("sdp", max_len=MAX_FRAME_BYTES)
    assert sdp is not None
    validate_sdp(sdp)
    return Answer(negotiation=negotiation, sdp=sdp, ref=f.ref)


def _publish(f: _Fields) -> Publish:
    f.only("tracks")
    raw = f.obj.get("tracks")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TRACKS_PER_MESSAGE:
        raise ProtocolError(f"publish.tracks must be a list of 1 to {MAX_TRACKS_PER_MESSAGE}")
    tracks = tuple(_track_request(item) for item in raw)
    ids = [t.client_id for t in tracks]
    if len(set(ids)) != len(ids):
        raise ProtocolError("publish.tracks: client_id repeated")
    return Publish(tracks=tracks, ref=f.ref)


def _track_request(item: object) -> TrackRequest:
    if not isinstance(item, dict):
        raise ProtocolError("publish.tracks[] must be objects")
    f = _Fields({"type": "publish.tracks[]", **item}, None)
    f.only(
        "client_id",
        "kind",
        "name",
        "enabled",
        "codec",
        "ordered",
        "max_retransmits",
        "max_packet_life_time",
    )
    client_id = f.text("client_id", max_len=MAX_CLIENT_ID)
    assert client_id is not None
    if not _CLIENT_ID.match(client_id):
        raise ProtocolError("publish.tracks[].client_id: letters, digits and _.:{}- only")
    kind = f.obj.get("kind")
    if kind not in ("audio", "video", "data"):
        raise ProtocolError(
            "publish.tracks[].kind must be 'audio', 'video' or 'data'", TRACK_INVALID
        )
    name = f.obj.get("name", client_id)
    validate_track_name(name)
    enabled = f.flag("enabled", True)
    if kind == "data":
        return _data_track_request(f, client_id, name, enabled)
    for field_name in ("ordered", "max_retransmits", "max_packet_life_time"):
        if field_name in f.obj:
            raise ProtocolError(f"publish.tracks[].{field_name} is for data tracks only")
    codec = f.obj.get("codec")
    if codec is not None and codec not in CODECS[kind]:
        raise ProtocolError(
            f"publish.tracks[].codec for {kind} must be one of {sorted(CODECS[kind])}",
            MEDIA_NO_SUPPORTED_CODEC,
        )
    return TrackRequest(client_id, kind, name, enabled, codec)


def _data_track_request(f: _Fields, client_id: str, name: str, enabled: bool) -> TrackRequest:
    if "codec" in f.obj:
        raise ProtocolError("publish.tracks[].codec is for audio and video tracks only")
    limits = {
        key: f.number(key, low=0, high=MAX_DATA_RELIABILITY) if f.obj.get(key) is not None else None
        for key in ("max_retransmits", "max_packet_life_time")
    }
    if None not in limits.values():
        raise ProtocolError(
            "publish.tracks[]: give max_retransmits or max_packet_life_time, not both"
        )
    return TrackRequest(
        client_id,
        "data",
        name,
        enabled,
        ordered=f.flag("ordered", True),
        max_retransmits=limits["max_retransmits"],
        max_packet_life_time=limits["max_packet_life_time"],
    )


def validate_track_name(name: object) -> None:
    """Twilio's track-name rules: a string, 1 to 128 characters, no control characters."""
    if not isinstance(name, str) or not name:
        raise ProtocolError("track name must be a non-empty string", TRACK_NAME_INVALID)
    if len(name) > MAX_TRACK_NAME:
        raise ProtocolError(f"track name longer than {MAX_TRACK_NAME}", TRACK_NAME_TOO_LONG)
    if _NAME_FORBIDDEN.search(name):
        raise ProtocolError("track name has control characters", TRACK_NAME_CHARS_INVALID)


def _unpublish(f: _Fields) -> Unpublish:
    f.only("track_sid")
    return Unpublish(track_sid=f.sid("track_sid"), ref=f.ref)


def _set_enabled(f: _Fields) -> SetEnabled:
    f.only("track_sid", "enabled")
    return SetEnabled(track_sid=f.sid("track_sid"), enabled=f.flag("enabled"), ref=f.ref)


def _set_render_size(f: _Fields) -> SetRenderSize:
    f.only("track_sid", "width", "height")
    return SetRenderSize(
        track_sid=f.sid("track_sid"),
        width=f.number("width", low=0, high=MAX_DIMENSION),
        height=f.number("height", low=0, high=MAX_DIMENSION),
        ref=f.ref,
    )


def _ping(f: _Fields) -> Ping:
    f.only()
    return Ping(ref=f.ref)


def _pong(f: _Fields) -> Pong:
    f.only()
    return Pong(ref=f.ref)


def _leave(f: _Fields) -> Leave:
    f.only()
    return Leave(ref=f.ref)


_PARSERS: dict[str, Callable[[_Fields], ClientMessage]] = {
    "join": _join,
    "answer": _answer,
    "publish": _publish,
    "unpublish": _unpublish,
    "set-enabled": _set_enabled,
    "set-render-size": _set_render_size,
    "ping": _ping,
    "pong": _pong,
    "leave": _leave,
}
CLIENT_MESSAGE_TYPES: Final = frozenset(_PARSERS)


def validate_sdp(sdp: str) -> None:
    """Cheap structural checks before an SDP reaches aiortc: size, line count, line shape.

    aiortc's own parser then runs inside the session, where its failures become 53403.
    """
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    if len(lines) > MAX_SDP_LINES:
        raise ProtocolError(f"SDP has more than {MAX_SDP_LINES} lines", SERVER_REMOTE_DESC_FAILED)
    if lines[0] != "v=0":
        raise ProtocolError("SDP must start with v=0", SERVER_REMOTE_DESC_FAILED)
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_SDP_LINE_BYTES or not _SDP_LINE.match(line):
            raise ProtocolError(f"SDP line {number} is malformed", SERVER_REMOTE_DESC_FAILED)
    # Distinct ones: a browser repeats the same candidates in every bundled m-line.
    if len({line for line in lines if line.startswith("a=candidate:")}) > MAX_SDP_CANDIDATES:
        raise ProtocolError(
            f"SDP has more than {MAX_SDP_CANDIDATES} ICE candidates", SERVER_REMOTE_DESC_FAILED
        )


# ---------------------------------------------------------------- server -> client messages


def error_message(code: int, message: str, ref: str | int | None = None) -> dict[str, Any]:
    """An error that leaves the session open (the offending message was ignored)."""
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        out["ref"] = ref
    return out


def publish_failed_message(client_id: str, code: int, message: str) -> dict[str, Any]:
    """One track of a ``publish`` was refused; the others in it may still be published."""
    return {"type": "publish-failed", "client_id": client_id, "code": code, "message": message}


def disconnected_message(code: int | None, message: str) -> dict[str, Any]:
    """The last message before the server closes: the participant is out of the room."""
    return {"type": "disconnected", "code": code, "message": message}


def ping_message(ref: int) -> dict[str, Any]:
    """The server's heartbeat."""
    return {"type": "ping", "ref": ref}


def pong_message(ref: str | int | None) -> dict[str, Any]:
    """The answer to a client's ``ping``."""
    out: dict[str, Any] = {"type": "pong"}
    if ref is not None:
        out["ref"] = ref
    return out


def encode(message: dict[str, Any]) -> str:
    """Serialize a server message (compact, ASCII-safe)."""
    return json.dumps(message, separators=(",", ":"))
