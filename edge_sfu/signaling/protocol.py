"""The signaling protocol, version 1: message shapes, limits, error codes and validation.

Every frame is one UTF-8 JSON object in a WebSocket *text* frame, with a ``type`` string.
Client messages are parsed into frozen dataclasses by ``parse_client_message``, which checks
every field (unknown fields included) and raises ``ProtocolError`` with a Twilio error code.
Server messages are plain dicts built by the ``*_message`` functions at the bottom, one per
message type and used by every sender, so the wire shape is visible in one place (``wire``
gives model objects theirs); ``docs/signaling.md`` documents both directions. Message types,
limits, error and close codes are public names here, for clients to import.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from ..errors import SfuError
from ..media import allocator as bw
from . import wire

if TYPE_CHECKING:
    from ..media.settings import IceServer
    from ..rooms import Participant, PublishedTrack, Room

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
#: Simulcast layers of one published video track (``publish.tracks[].layers``).
MAX_LAYERS: Final = 3
#: Largest ``max_bitrate`` of one layer, bit/s.
MAX_LAYER_BITRATE: Final = 50_000_000
#: ``join.network_quality`` verbosity names, as twilio-video.js's (index: its number).
NETWORK_QUALITY_VERBOSITY: Final = ("none", "minimal", "moderate", "detailed")

# Twilio error codes used by signaling (https://www.twilio.com/docs/api/errors/<code>).
SIGNALING_ERROR: Final = 53000
SIGNALING_DISCONNECTED: Final = 53001
SIGNALING_TIMEOUT: Final = 53002
INVALID_CLIENT_MESSAGE: Final = 53004
ROOM_CONNECT_FAILED: Final = 53104
ROOM_NOT_FOUND: Final = 53106
MAX_TRACKS_EXCEEDED: Final = 53203
BANDWIDTH_PROFILE_INVALID: Final = 53208
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

# Message types. Client to server:
MSG_JOIN: Final = "join"
MSG_ANSWER: Final = "answer"
MSG_PUBLISH: Final = "publish"
MSG_UNPUBLISH: Final = "unpublish"
MSG_SET_ENABLED: Final = "set-enabled"
MSG_SET_RENDER_SIZE: Final = "set-render-size"
MSG_SET_PRIORITY: Final = "set-priority"
MSG_SET_PUBLISH_PRIORITY: Final = "set-publish-priority"
MSG_SET_SWITCHED_OFF: Final = "set-switched-off"
MSG_LINK_STATS: Final = "link-stats"
MSG_SENDING_LAYERS: Final = "sending-layers"
MSG_PING: Final = "ping"
MSG_PONG: Final = "pong"
MSG_LEAVE: Final = "leave"
# Server to client (``ping`` and ``pong`` go both ways):
MSG_JOINED: Final = "joined"
MSG_OFFER: Final = "offer"
MSG_PUBLISHED: Final = "published"
MSG_PUBLISH_FAILED: Final = "publish-failed"
MSG_PARTICIPANT_CONNECTED: Final = "participant-connected"
MSG_PARTICIPANT_DISCONNECTED: Final = "participant-disconnected"
MSG_PARTICIPANT_RECONNECTING: Final = "participant-reconnecting"
MSG_PARTICIPANT_RECONNECTED: Final = "participant-reconnected"
MSG_TRACK_PUBLISHED: Final = "track-published"
MSG_TRACK_UNPUBLISHED: Final = "track-unpublished"
MSG_TRACK_ENABLED: Final = "track-enabled"
MSG_TRACK_DISABLED: Final = "track-disabled"
MSG_TRACK_SUBSCRIBED: Final = "track-subscribed"
MSG_TRACK_UNSUBSCRIBED: Final = "track-unsubscribed"
MSG_TRACK_SWITCHED_OFF: Final = "track-switched-off"
MSG_TRACK_SWITCHED_ON: Final = "track-switched-on"
MSG_TRACK_PRIORITY_CHANGED: Final = "track-priority-changed"
MSG_ROOM_COMPLETED: Final = "room-completed"
MSG_RECORDING_STARTED: Final = "recording-started"
MSG_RECORDING_STOPPED: Final = "recording-stopped"
MSG_ERROR: Final = "error"
MSG_DISCONNECTED: Final = "disconnected"
MSG_SEND_LAYERS: Final = "send-layers"
MSG_DOMINANT_SPEAKER: Final = "dominant-speaker"
MSG_NETWORK_QUALITY: Final = "network-quality"
SERVER_MESSAGE_TYPES: Final = frozenset(
    {
        MSG_JOINED,
        MSG_OFFER,
        MSG_PUBLISHED,
        MSG_PUBLISH_FAILED,
        MSG_PARTICIPANT_CONNECTED,
        MSG_PARTICIPANT_DISCONNECTED,
        MSG_PARTICIPANT_RECONNECTING,
        MSG_PARTICIPANT_RECONNECTED,
        MSG_TRACK_PUBLISHED,
        MSG_TRACK_UNPUBLISHED,
        MSG_TRACK_ENABLED,
        MSG_TRACK_DISABLED,
        MSG_TRACK_SUBSCRIBED,
        MSG_TRACK_UNSUBSCRIBED,
        MSG_TRACK_SWITCHED_OFF,
        MSG_TRACK_SWITCHED_ON,
        MSG_TRACK_PRIORITY_CHANGED,
        MSG_ROOM_COMPLETED,
        MSG_RECORDING_STARTED,
        MSG_RECORDING_STOPPED,
        MSG_ERROR,
        MSG_DISCONNECTED,
        MSG_SEND_LAYERS,
        MSG_DOMINANT_SPEAKER,
        MSG_NETWORK_QUALITY,
        MSG_PING,
        MSG_PONG,
    }
)

TrackKindName = Literal["audio", "video", "data"]
#: Codecs a publisher may pin its m-line to (what the forwarder carries).
CODECS: Final = {"audio": frozenset({"opus"}), "video": frozenset({"H264", "VP8"})}
_NAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:{}\-]{1,64}$")
#: A simulcast layer's rid (RFC 8851's rid-syntax, at most 16 characters).
_RID = re.compile(r"^[A-Za-z0-9_\-]{1,16}$")
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
    #: Ask for ``dominant-speaker`` messages (twilio-video.js's ``dominantSpeaker``).
    dominant_speaker: bool = False
    #: Ask for ``network-quality`` messages: (local, remote) verbosity, 0 (none) to 3
    #: (detailed), as twilio-video.js's ``networkQuality``; None: not asked.
    network_quality: tuple[int, int] | None = None
    #: The subscriber's ``bandwidthProfile.video`` (None: the defaults).
    bandwidth_profile: bw.VideoBandwidthProfile | None = None


@dataclass(frozen=True)
class Answer:
    """The client's SDP answer to the server's offer number ``negotiation``."""

    negotiation: int
    sdp: str
    ref: str | int | None = None


@dataclass(frozen=True)
class LayerRequest:
    """One simulcast layer a client will send for a video track: its rid, the picture size
    it encodes at, and the most bit/s it will spend on it (None: not said)."""

    rid: str
    width: int
    height: int
    max_bitrate: int | None = None


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
    #: Video only: the simulcast layers the client will send, lowest first (empty: one
    #: stream). The server offers one rid per layer and pauses the layers nobody takes.
    layers: tuple[LayerRequest, ...] = ()
    #: Audio and video: the track priority its subscribers give it unless they set their own.
    priority: bw.Priority = "standard"


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
class SetPriority:
    """The subscriber's priority for a subscribed track (None: the publisher's again)."""

    track_sid: str
    priority: bw.Priority | None
    ref: str | int | None = None


@dataclass(frozen=True)
class SetPublishPriority:
    """The priority of one of the client's own published tracks."""

    track_sid: str
    priority: bw.Priority
    ref: str | int | None = None


@dataclass(frozen=True)
class SetSwitchedOff:
    """The subscriber switches a subscribed video track off (or back on) itself."""

    track_sid: str
    switched_off: bool
    ref: str | int | None = None


@dataclass(frozen=True)
class LinkStats:
    """What the client's own sender estimates its uplink carries (bit/s; a browser's
    ``availableOutgoingBitrate``; None: not known): network quality judges the uplink by it."""

    available_send_bps: int | None
    ref: str | int | None = None


@dataclass(frozen=True)
class SendingLayers:
    """The simulcast layers (rids) the client's encoder runs now for one of its video
    tracks: the others are paused at the client (its uplink carries only the lowest, or
    nobody takes them), and the SFU moves their subscribers to a layer still sent at once."""

    track_sid: str
    rids: tuple[str, ...]
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
    Join
    | Answer
    | Publish
    | Unpublish
    | SetEnabled
    | SetRenderSize
    | SetPriority
    | SetPublishPriority
    | SetSwitchedOff
    | LinkStats
    | SendingLayers
    | Ping
    | Pong
    | Leave
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
    f.only(
        "version",
        "token",
        "reconnect_token",
        "room",
        "bandwidth_profile",
        "dominant_speaker",
        "network_quality",
    )
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
    profile = parse_bandwidth_profile(f.obj.get("bandwidth_profile"))
    return Join(
        PROTOCOL_VERSION,
        token,
        again,
        room,
        ref=f.ref,
        bandwidth_profile=profile,
        dominant_speaker=f.flag("dominant_speaker", False),
        network_quality=_network_quality(f.obj.get("network_quality")),
    )


def _network_quality(raw: object) -> tuple[int, int] | None:
    # {"local": name, "remote": name}; twilio-video.js's defaults for a missing side
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"local", "remote"}:
        raise ProtocolError('join.network_quality must be {"local": ..., "remote": ...}')
    levels = []
    for side, default in (("local", "minimal"), ("remote", "none")):
        value = raw.get(side, default)
        if value not in NETWORK_QUALITY_VERBOSITY:
            raise ProtocolError(
                f"join.network_quality.{side} must be one of "
                f"{', '.join(NETWORK_QUALITY_VERBOSITY)}, not {str(value)[:20]!r}"
            )
        levels.append(NETWORK_QUALITY_VERBOSITY.index(value))
    return levels[0], levels[1]


#: ``bandwidth_profile.video`` fields that take one of a few names.
_PROFILE_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "mode": bw.MODES,
    "dominant_speaker_priority": bw.PRIORITIES,
    "track_switch_off_mode": bw.SWITCH_OFF_MODES,
    "client_track_switch_off_control": bw.CONTROLS,
    "content_preferences_mode": bw.CONTROLS,
}


def parse_bandwidth_profile(raw: object) -> bw.VideoBandwidthProfile | None:
    """``join.bandwidth_profile``: ``{"video": {...}}`` with Twilio's ``bandwidthProfile.video``
    options in snake case; every field optional, unknown fields and values refused (Twilio's
    53208, "Participant's bandwidth profile configuration is invalid")."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ProtocolError("join.bandwidth_profile must be an object", BANDWIDTH_PROFILE_INVALID)
    extra = set(raw) - {"video"}
    if extra:
        raise ProtocolError(
            f"join.bandwidth_profile: unknown field {sorted(extra)[0][:40]!r}",
            BANDWIDTH_PROFILE_INVALID,
        )
    video = raw.get("video")
    if video is None:
        return bw.VideoBandwidthProfile()
    if not isinstance(video, dict):
        raise ProtocolError(
            "join.bandwidth_profile.video must be an object", BANDWIDTH_PROFILE_INVALID
        )
    known = {*_PROFILE_CHOICES, "max_subscription_bitrate"}
    extra = set(video) - known
    if extra:
        raise ProtocolError(
            f"join.bandwidth_profile.video: unknown field {sorted(extra)[0][:40]!r}",
            BANDWIDTH_PROFILE_INVALID,
        )
    values: dict[str, Any] = {}
    for name, choices in _PROFILE_CHOICES.items():
        value = video.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or value not in choices:
            raise ProtocolError(
                f"join.bandwidth_profile.video.{name} must be one of {list(choices)}",
                BANDWIDTH_PROFILE_INVALID,
            )
        values[name] = value
    bitrate = video.get("max_subscription_bitrate")
    if bitrate is not None:
        if (
            not isinstance(bitrate, int)
            or isinstance(bitrate, bool)
            or not 0 < bitrate <= bw.MAX_BPS
        ):
            raise ProtocolError(
                "join.bandwidth_profile.video.max_subscription_bitrate must be an integer "
                f"1..{bw.MAX_BPS} (bits per second) or null",
                BANDWIDTH_PROFILE_INVALID,
            )
        values["max_subscription_bitrate"] = bitrate
    return bw.VideoBandwidthProfile(**values)


def _priority(f: _Fields, name: str, *, nullable: bool) -> bw.Priority | None:
    value = f.obj.get(name)
    if value is None and nullable:
        return None
    for known in bw.PRIORITIES:
        if value == known:
            return known
    allowed = [*bw.PRIORITIES, *([None] if nullable else [])]
    raise ProtocolError(f"{f.type}.{name} must be one of {allowed}")


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
        "layers",
        "priority",
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
    layers = _layer_requests(f.obj["layers"], kind) if "layers" in f.obj else ()
    for field_name in ("ordered", "max_retransmits", "max_packet_life_time"):
        if field_name in f.obj:
            raise ProtocolError(f"publish.tracks[].{field_name} is for data tracks only")
    priority = _priority(f, "priority", nullable=True) or "standard"
    codec = f.obj.get("codec")
    if codec is not None and codec not in CODECS[kind]:
        raise ProtocolError(
            f"publish.tracks[].codec for {kind} must be one of {sorted(CODECS[kind])}",
            MEDIA_NO_SUPPORTED_CODEC,
        )
    return TrackRequest(client_id, kind, name, enabled, codec, layers=layers, priority=priority)


def _layer_requests(raw: object, kind: str) -> tuple[LayerRequest, ...]:
    if kind != "video":
        raise ProtocolError("publish.tracks[].layers is for video tracks only")
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_LAYERS:
        raise ProtocolError(f"publish.tracks[].layers must be a list of 2 to {MAX_LAYERS}")
    layers: list[LayerRequest] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ProtocolError("publish.tracks[].layers[] must be objects")
        f = _Fields({"type": "publish.tracks[].layers[]", **item}, None)
        f.only("rid", "width", "height", "max_bitrate")
        rid = f.obj.get("rid")
        if not isinstance(rid, str) or not _RID.match(rid):
            raise ProtocolError(
                "publish.tracks[].layers[].rid: 1 to 16 letters, digits, _ or - (RFC 8851)"
            )
        width = f.number("width", low=1, high=MAX_DIMENSION)
        height = f.number("height", low=1, high=MAX_DIMENSION)
        bitrate = (
            f.number("max_bitrate", low=1000, high=MAX_LAYER_BITRATE)
            if f.obj.get("max_bitrate") is not None
            else None
        )
        layers.append(LayerRequest(rid, width, height, bitrate))
    if len({layer.rid for layer in layers}) != len(layers):
        raise ProtocolError("publish.tracks[].layers: rid repeated")
    for low, high in itertools.pairwise(layers):
        if not (
            low.width <= high.width
            and low.height <= high.height
            and low.width * low.height < high.width * high.height
        ):
            raise ProtocolError("publish.tracks[].layers must go from the smallest to the largest")
    return tuple(layers)


def _data_track_request(f: _Fields, client_id: str, name: str, enabled: bool) -> TrackRequest:
    for field_name in ("codec", "layers", "priority"):
        if field_name in f.obj:
            raise ProtocolError(f"publish.tracks[].{field_name} is for audio and video tracks only")
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


def _set_priority(f: _Fields) -> SetPriority:
    f.only("track_sid", "priority")
    if "priority" not in f.obj:
        raise ProtocolError("set-priority.priority is required (null clears it)")
    return SetPriority(
        track_sid=f.sid("track_sid"), priority=_priority(f, "priority", nullable=True), ref=f.ref
    )


def _set_publish_priority(f: _Fields) -> SetPublishPriority:
    f.only("track_sid", "priority")
    priority = _priority(f, "priority", nullable=False)
    assert priority is not None
    return SetPublishPriority(track_sid=f.sid("track_sid"), priority=priority, ref=f.ref)


def _set_switched_off(f: _Fields) -> SetSwitchedOff:
    f.only("track_sid", "switched_off")
    return SetSwitchedOff(
        track_sid=f.sid("track_sid"), switched_off=f.flag("switched_off"), ref=f.ref
    )


def _link_stats(f: _Fields) -> LinkStats:
    f.only("available_send_bps")
    if f.obj.get("available_send_bps") is None:
        return LinkStats(None, ref=f.ref)
    return LinkStats(f.number("available_send_bps", low=0, high=bw.MAX_BPS), ref=f.ref)


def _sending_layers(f: _Fields) -> SendingLayers:
    f.only("track_sid", "rids")
    rids = f.obj.get("rids")
    if not isinstance(rids, list) or len(rids) > MAX_LAYERS:
        raise ProtocolError(f"sending-layers.rids must be a list of at most {MAX_LAYERS} rids")
    for rid in rids:
        if not isinstance(rid, str) or not _RID.match(rid):
            raise ProtocolError("sending-layers.rids[]: 1 to 16 letters, digits, _ or - (RFC 8851)")
    if len(set(rids)) != len(rids):
        raise ProtocolError("sending-layers.rids: rid repeated")
    return SendingLayers(track_sid=f.sid("track_sid"), rids=tuple(rids), ref=f.ref)


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
    MSG_JOIN: _join,
    MSG_ANSWER: _answer,
    MSG_PUBLISH: _publish,
    MSG_UNPUBLISH: _unpublish,
    MSG_SET_ENABLED: _set_enabled,
    MSG_SET_RENDER_SIZE: _set_render_size,
    MSG_SET_PRIORITY: _set_priority,
    MSG_SET_PUBLISH_PRIORITY: _set_publish_priority,
    MSG_SET_SWITCHED_OFF: _set_switched_off,
    MSG_LINK_STATS: _link_stats,
    MSG_SENDING_LAYERS: _sending_layers,
    MSG_PING: _ping,
    MSG_PONG: _pong,
    MSG_LEAVE: _leave,
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
#
# One builder per message type; nothing else in the server writes a ``type``. Model objects
# (rooms, participants, tracks) get their wire shape from ``wire``.

#: A subscription as a client sees it: the publisher, the track, and the ``mid`` (audio,
#: video) or ``channel`` (data) that carries it. ``track-subscribed`` sends it and ``joined``
#: repeats the current ones.
Subscription = dict[str, Any]


def joined_message(
    state: Mapping[str, Any], reconnect_token: str, timers: Mapping[str, float]
) -> dict[str, Any]:
    """Answer to ``join``: the room as ``joined_state`` describes it, the token to come back
    with, and the timers the client must respect."""
    return {
        "type": MSG_JOINED,
        "version": PROTOCOL_VERSION,
        **state,
        "reconnect_token": reconnect_token,
        **timers,
    }


def joined_state(
    room: Room,
    me: Participant,
    ice_servers: tuple[IceServer, ...],
    subscriptions: list[Subscription],
    max_data_message_bytes: int,
) -> dict[str, Any]:
    """The room part of ``joined``: the room, this participant, the others, what it receives."""
    return {
        "room": wire.room_json(room),
        "participant": wire.participant_json(me),
        "participants": [
            wire.participant_json(other)
            for other in room.participants.values()
            if other.sid != me.sid
        ],
        "subscriptions": subscriptions,
        "ice_servers": wire.ice_servers_json(ice_servers),
        "max_data_message_bytes": max_data_message_bytes,
    }


def offer_message(negotiation: int, sdp: str, publish: Mapping[str, str]) -> dict[str, Any]:
    """The server's offer; ``publish`` maps the mid of each new receive-only m-line to the
    ``client_id`` the client should send on it."""
    return {"type": MSG_OFFER, "negotiation": negotiation, "sdp": sdp, "publish": dict(publish)}


def published_message(
    client_id: str, track_sid: str, channel: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One of the client's tracks is published (data tracks: the channel to send on)."""
    track: dict[str, Any] = {"client_id": client_id, "sid": track_sid}
    if channel is not None:
        track["channel"] = dict(channel)
    return {"type": MSG_PUBLISHED, "tracks": [track]}


def publish_failed_message(client_id: str, code: int, message: str) -> dict[str, Any]:
    """One track of a ``publish`` was refused; the others in it may still be published."""
    return {"type": MSG_PUBLISH_FAILED, "client_id": client_id, "code": code, "message": message}


def send_layers_message(track_sid: str, rids: Sequence[str]) -> dict[str, Any]:
    """Which simulcast layers (``rids``, lowest first) of the client's published video
    track ``track_sid`` someone receives now: the client may pause the others (keeping its
    lowest layer going while any is wanted); an empty list: none at all."""
    return {"type": MSG_SEND_LAYERS, "track_sid": track_sid, "rids": list(rids)}


def participant_connected_message(participant: Participant) -> dict[str, Any]:
    """Someone joined the room (with its publications)."""
    return {"type": MSG_PARTICIPANT_CONNECTED, "participant": wire.participant_json(participant)}


def participant_disconnected_message(participant_sid: str) -> dict[str, Any]:
    """Someone left the room."""
    return {"type": MSG_PARTICIPANT_DISCONNECTED, "participant_sid": participant_sid}


def participant_reconnecting_message(participant_sid: str) -> dict[str, Any]:
    """Someone's signaling link dropped; it may come back within the reconnect window."""
    return {"type": MSG_PARTICIPANT_RECONNECTING, "participant_sid": participant_sid}


def participant_reconnected_message(participant_sid: str) -> dict[str, Any]:
    """Someone came back within the reconnect window."""
    return {"type": MSG_PARTICIPANT_RECONNECTED, "participant_sid": participant_sid}


def track_published_message(participant_sid: str, track: PublishedTrack) -> dict[str, Any]:
    """Another participant published a track."""
    return {
        "type": MSG_TRACK_PUBLISHED,
        "participant_sid": participant_sid,
        "track": wire.track_json(track),
    }


def track_unpublished_message(participant_sid: str, track_sid: str) -> dict[str, Any]:
    """Another participant stopped publishing a track."""
    return {
        "type": MSG_TRACK_UNPUBLISHED,
        "participant_sid": participant_sid,
        "track_sid": track_sid,
    }


def track_enabled_message(participant_sid: str, track_sid: str) -> dict[str, Any]:
    """Another participant unmuted a track."""
    return {"type": MSG_TRACK_ENABLED, "participant_sid": participant_sid, "track_sid": track_sid}


def track_disabled_message(participant_sid: str, track_sid: str) -> dict[str, Any]:
    """Another participant muted a track."""
    return {"type": MSG_TRACK_DISABLED, "participant_sid": participant_sid, "track_sid": track_sid}


def subscription(
    publisher_sid: str,
    track_sid: str,
    *,
    mid: str | None = None,
    channel: Mapping[str, Any] | None = None,
) -> Subscription:
    """A subscription's wire shape: exactly one of ``mid`` and ``channel``."""
    if (mid is None) == (channel is None):
        raise ValueError("a subscription has a mid or a channel")
    body: Subscription = {"participant_sid": publisher_sid, "track_sid": track_sid}
    if mid is not None:
        body["mid"] = mid
    else:
        assert channel is not None
        body["channel"] = dict(channel)
    return body


def track_subscribed_message(sub: Subscription) -> dict[str, Any]:
    """The client now receives a track (``subscription`` builds ``sub``)."""
    return {"type": MSG_TRACK_SUBSCRIBED, **sub}


def track_unsubscribed_message(publisher_sid: str, track_sid: str) -> dict[str, Any]:
    """The client no longer receives a track."""
    return {
        "type": MSG_TRACK_UNSUBSCRIBED,
        "participant_sid": publisher_sid,
        "track_sid": track_sid,
    }


def track_switched_off_message(publisher_sid: str, track_sid: str, reason: str) -> dict[str, Any]:
    """The server stopped sending a subscribed track (``reason``: Twilio's switch-off
    reasons: ``network-congestion``, ``max-bandwidth-reached``, ``disabled-by-subscriber``)."""
    return {
        "type": MSG_TRACK_SWITCHED_OFF,
        "participant_sid": publisher_sid,
        "track_sid": track_sid,
        "reason": reason,
    }


def track_switched_on_message(publisher_sid: str, track_sid: str) -> dict[str, Any]:
    """The server sends a switched-off track again (from its next keyframe)."""
    return {"type": MSG_TRACK_SWITCHED_ON, "participant_sid": publisher_sid, "track_sid": track_sid}


def track_priority_changed_message(
    publisher_sid: str, track_sid: str, priority: str
) -> dict[str, Any]:
    """A publisher changed the priority of one of its tracks (``publishPriorityChanged``)."""
    return {
        "type": MSG_TRACK_PRIORITY_CHANGED,
        "participant_sid": publisher_sid,
        "track_sid": track_sid,
        "priority": priority,
    }


def room_completed_message() -> dict[str, Any]:
    """The room ended (a ``disconnected`` 53118 follows)."""
    return {"type": MSG_ROOM_COMPLETED}


def recording_started_message() -> dict[str, Any]:
    """The room is being recorded (some of its tracks are); sent on join too."""
    return {"type": MSG_RECORDING_STARTED}


def recording_stopped_message() -> dict[str, Any]:
    """No track of the room is being recorded any more."""
    return {"type": MSG_RECORDING_STOPPED}


def error_message(code: int, message: str, ref: str | int | None = None) -> dict[str, Any]:
    """An error that leaves the session open (the offending message was ignored)."""
    out: dict[str, Any] = {"type": MSG_ERROR, "code": code, "message": message}
    if ref is not None:
        out["ref"] = ref
    return out


def disconnected_message(code: int | None, message: str) -> dict[str, Any]:
    """The last message before the server closes: the participant is out of the room."""
    return {"type": MSG_DISCONNECTED, "code": code, "message": message}


def ping_message(ref: int) -> dict[str, Any]:
    """The server's heartbeat."""
    return {"type": MSG_PING, "ref": ref}


def pong_message(ref: str | int | None) -> dict[str, Any]:
    """The answer to a client's ``ping``."""
    out: dict[str, Any] = {"type": MSG_PONG}
    if ref is not None:
        out["ref"] = ref
    return out


def dominant_speaker_message(participant_sid: str | None) -> dict[str, Any]:
    """The room's dominant speaker changed (None: nobody, the speaker left)."""
    return {"type": MSG_DOMINANT_SPEAKER, "participant_sid": participant_sid}


def network_quality_message(participant_sid: str, report: Mapping[str, object]) -> dict[str, Any]:
    """A participant's network quality at the verbosity asked for: ``level`` (0 to 5) and,
    from ``moderate``, ``send``/``recv`` levels and more (docs/signaling.md)."""
    return {"type": MSG_NETWORK_QUALITY, "participant_sid": participant_sid, **report}


def encode(message: dict[str, Any]) -> str:
    """Serialize a server message (compact, ASCII-safe)."""
    return json.dumps(message, separators=(",", ":"))
