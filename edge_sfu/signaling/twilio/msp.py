"""twilio-video.js media signaling: the JSON messages of the data channels the server opens.

The server names each channel in ``connected``/``synced`` ``media_signaling`` and opens it
(in-band, labelled with its name); the SDK sends ``{"type": "ready"}`` on it first. This
module parses what the SDK sends and builds what the server sends; ``channels.py`` runs
them. Message shapes are those of the SDK's ``lib/signaling/v2/*signaling.js``.

A message the server cannot use is answered on its channel with ``error_message`` (the
RSP ``error`` body's shape, code 53004, which every SDK channel ignores) or, for a render
hint, with a non-``OK`` result for that hint; nothing else happens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ...media import allocator as bw
from ...media.quality import VERBOSITY_DETAILED, VERBOSITY_MODERATE, LinkLevels, LinkSample
from ...media.quality import NetworkQuality as Quality
from .. import protocol as p
from .rsp import INVALID_CLIENT_MESSAGE

ACTIVE_SPEAKER: Final = "active_speaker"
NETWORK_QUALITY: Final = "network_quality"
TRACK_PRIORITY: Final = "track_priority"
TRACK_SWITCH_OFF: Final = "track_switch_off"
RENDER_HINTS: Final = "render_hints"
PUBLISHER_HINTS: Final = "publisher_hints"
CLIENT_RESET: Final = "client_reset"
#: The channels the unit serves, in the order the SDK sets them up.
#: ``extension_transcriptions`` is not among them: left unadvertised, the SDK runs without it.
CHANNELS: Final = (
    ACTIVE_SPEAKER,
    NETWORK_QUALITY,
    TRACK_PRIORITY,
    TRACK_SWITCH_OFF,
    RENDER_HINTS,
    PUBLISHER_HINTS,
)
#: What the client may send on each channel (besides ``ready``).
_CLIENT_TYPES: Final[dict[str, frozenset[str]]] = {
    ACTIVE_SPEAKER: frozenset(),
    NETWORK_QUALITY: frozenset({NETWORK_QUALITY}),
    TRACK_PRIORITY: frozenset({TRACK_PRIORITY}),
    TRACK_SWITCH_OFF: frozenset(),
    RENDER_HINTS: frozenset({RENDER_HINTS}),
    PUBLISHER_HINTS: frozenset({PUBLISHER_HINTS, CLIENT_RESET}),
}

#: A client message longer than this is refused unread (the SDK's are well under 4 kB).
MAX_MESSAGE_BYTES: Final = 16_384
#: Render hints per message (one per subscribed video track).
MAX_HINTS: Final = 64
#: A render dimension above this is no screen's.
MAX_DIMENSION: Final = 16_384
MAX_SID: Final = 64

#: Render hint results (the SDK logs any but ``OK``).
OK: Final = "OK"
UNKNOWN_TRACK: Final = "UNKNOWN_TRACK"
INVALID_RENDER_HINT: Final = "INVALID_RENDER_HINT"
#: Publisher hint results the SDK answers that ask for the hint again later (it did not
#: know the track yet, or could not apply it then); ``REQUEST_SKIPPED`` (a newer hint
#: replaced it) and ``OK`` do not.
HINT_RETRY_RESULTS: Final = frozenset({UNKNOWN_TRACK, "COULD_NOT_APPLY_HINT"})


class MspError(ValueError):
    """A media-signaling message the server cannot act on."""


@dataclass(frozen=True)
class Ready:
    """The client set up its side of the channel."""


@dataclass(frozen=True)
class QualityRequest:
    """The SDK's network-quality inputs: the verbosity it asks for, and its sender's own
    estimate of its uplink (``ice.availableSend``, the browser's
    ``availableOutgoingBitrate``; None when absent or not a number). The server measures
    everything else itself."""

    local: int
    remote: int
    available_send_bps: int | None = None


@dataclass(frozen=True)
class TrackPriority:
    """The subscriber's priority for one subscribed track (None: the publisher's)."""

    track: str
    priority: bw.Priority | None


@dataclass(frozen=True)
class RenderHint:
    """One track's hint: switched on or off by the subscriber, and/or its render size.

    ``error`` is set for a hint that cannot be used (answered ``INVALID_RENDER_HINT``).
    """

    track: str
    enabled: bool | None = None
    size: tuple[int, int] | None = None
    error: str | None = None


@dataclass(frozen=True)
class RenderHints:
    """A ``render_hints`` request; answered with one result per hint, echoing ``id``."""

    id: int
    hints: tuple[RenderHint, ...]


@dataclass(frozen=True)
class HintResults:
    """The publisher's answer to ``publisher_hints`` request ``id``: (track SID, result)."""

    id: int
    results: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ClientReset:
    """The publisher replaced a track's source and reset its encodings to its defaults."""

    track: str


Message = Ready | QualityRequest | TrackPriority | RenderHints | HintResults | ClientReset


def requested(raw: object) -> frozenset[str]:
    """The channels a ``connect`` body's ``media_signaling`` asks for over data channels
    and that the unit serves; anything malformed asks for nothing."""
    if not isinstance(raw, dict):
        return frozenset()
    out = set()
    for name, spec in raw.items():
        if name not in CHANNELS or not isinstance(spec, dict):
            continue
        transports = spec.get("transports")
        if isinstance(transports, list) and any(
            isinstance(t, dict) and t.get("type") == "data-channel" for t in transports
        ):
            out.add(name)
    return frozenset(out)


def advertised(names: Iterable[str]) -> dict[str, Any]:
    """``media_signaling`` of ``connected``/``synced``: each channel and its label."""
    return {n: {"transport": {"type": "data-channel", "label": n}} for n in names}


def _sid(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_SID:
        raise MspError(f"{what} must be a track SID")
    return value


def _verbosity(value: object, what: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
        raise MspError(f"{what} must be a verbosity 0..3")
    return value


def _dimension(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or not 0 <= value <= MAX_DIMENSION:  # NaN, negative, absurd
        return None
    return int(value)


def _hint(item: object) -> RenderHint:
    if not isinstance(item, dict):
        raise MspError("each render hint must be an object")
    track = _sid(item.get("track"), "render_hints.hints[].track")
    enabled = item.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        return RenderHint(track, error="enabled must be true or false")
    size = None
    dims = item.get("render_dimensions")
    if dims is not None:
        if not isinstance(dims, dict):
            return RenderHint(track, error="render_dimensions must be an object")
        width, height = _dimension(dims.get("width")), _dimension(dims.get("height"))
        if width is None or height is None:
            return RenderHint(track, error=f"render_dimensions must be 0..{MAX_DIMENSION}")
        size = (width, height)
    if enabled is None and size is None:
        return RenderHint(track, error="a hint needs enabled or render_dimensions")
    return RenderHint(track, enabled, size)


def parse(channel: str, raw: str | bytes) -> Message:
    """One message the client sent on ``channel``; raises ``MspError``."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MspError(f"message longer than {MAX_MESSAGE_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MspError("message is not JSON") from None
    if not isinstance(body, dict):
        raise MspError("message must be a JSON object")
    kind = body.get("type")
    if kind == "ready":
        return Ready()
    if not isinstance(kind, str) or kind not in _CLIENT_TYPES.get(channel, frozenset()):
        raise MspError(f"unknown message type {str(kind)[:32]!r} on {channel}")
    if kind == NETWORK_QUALITY:
        return QualityRequest(
            _verbosity(body.get("reportLevel"), "reportLevel", 1),
            _verbosity(body.get("remoteReportLevel"), "remoteReportLevel", 0),
            _available_send(body.get("ice")),
        )
    if kind == TRACK_PRIORITY:
        priority = body.get("subscribe")
        if priority is not None and priority not in bw.PRIORITIES:
            raise MspError(f"subscribe must be one of {list(bw.PRIORITIES)} or null")
        return TrackPriority(_sid(body.get("track"), "track"), priority)
    if kind == CLIENT_RESET:
        return ClientReset(_sid(body.get("track"), "client_reset.track"))
    if kind == PUBLISHER_HINTS:
        return HintResults(_ref(body.get("id"), "publisher_hints.id"), _results(body.get("hints")))
    subscriber = body.get("subscriber")
    if not isinstance(subscriber, dict):
        raise MspError("render_hints.subscriber must be an object")
    ref = _ref(subscriber.get("id"), "render_hints.subscriber.id")
    hints = subscriber.get("hints")
    if not isinstance(hints, list) or len(hints) > MAX_HINTS:
        raise MspError(f"render_hints.subscriber.hints must be a list of at most {MAX_HINTS}")
    return RenderHints(ref, tuple(_hint(h) for h in hints))


def _ref(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise MspError(f"{what} must be a non-negative integer")
    return value


def _results(hints: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(hints, list) or len(hints) > MAX_HINTS:
        raise MspError(f"publisher_hints.hints must be a list of at most {MAX_HINTS}")
    out = []
    for item in hints:
        if not isinstance(item, dict):
            raise MspError("each publisher hint result must be an object")
        result = item.get("result")
        if not isinstance(result, str) or len(result) > 64:
            raise MspError("publisher_hints.hints[].result must be a string")
        out.append((_sid(item.get("track"), "publisher_hints.hints[].track"), result))
    return tuple(out)


def _available_send(ice: object) -> int | None:
    # a statistic, not a command: one the server cannot use is left out, not refused
    value = ice.get("availableSend") if isinstance(ice, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= bw.MAX_BPS:  # also NaN
        return None
    return int(value)


#: The SDK's ``bandwidth_profile.video`` payload names (``util/index.js``) -> the unit's.
#: ``max_tracks`` and ``render_dimensions`` (deprecated in the SDK) are not used; the
#: SDK keeps ``clientTrackSwitchOffControl`` and ``contentPreferencesMode`` to itself (they
#: decide which render hints it sends).
_PROFILE_NAMES: Final = {
    "mode": "mode",
    "active_speaker_priority": "dominant_speaker_priority",
    "max_subscription_bandwidth": "max_subscription_bitrate",
    "track_switch_off": "track_switch_off_mode",
}


def bandwidth_profile(raw: object) -> bw.VideoBandwidthProfile | None:
    """A ``connect`` body's ``bandwidth_profile``; raises ``protocol.ProtocolError`` (code
    53208) for values the unit's own protocol would refuse."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("video", {}), dict):
        raise p.ProtocolError("bandwidth_profile must be an object", p.BANDWIDTH_PROFILE_INVALID)
    video = raw.get("video") or {}
    ours: dict[str, object] = {}
    for theirs, name in _PROFILE_NAMES.items():
        value = video.get(theirs)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a JavaScript number
        if value is not None:
            ours[name] = value
    return p.parse_bandwidth_profile({"video": ours})


# -- server messages ------------------------------------------------------------------


def json_text(body: dict[str, Any]) -> str:
    """A server message as sent on its channel (compact JSON)."""
    return json.dumps(body, separators=(",", ":"))


def error_message(message: str) -> dict[str, Any]:
    """The answer to a message the server cannot act on (the channel stays open)."""
    return {"type": "error", "code": INVALID_CLIENT_MESSAGE, "message": message[:200]}


def active_speaker_message(participant_sid: str | None) -> dict[str, Any]:
    """The room's dominant speaker (``dominantSpeakerChanged``; None: nobody)."""
    return {"type": ACTIVE_SPEAKER, "participant": participant_sid}


def switch_off_message(off: Iterable[str] = (), on: Iterable[str] = ()) -> dict[str, Any]:
    """Tracks the server stopped or resumed forwarding (``switchedOff``/``switchedOn``).

    The SDK versions the unit supports take no reason here; the REST API and the unit's
    own protocol carry it."""
    return {"type": TRACK_SWITCH_OFF, "off": list(off), "on": list(on)}


def render_hints_response(ref: int, results: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """One result per hint of request ``ref``: (track SID, ``OK`` or an error name)."""
    hints = [{"track": t, "result": r} for t, r in results]
    return {"type": RENDER_HINTS, "subscriber": {"id": ref, "hints": hints}}


def publisher_hints_message(
    ref: int, hints: Iterable[tuple[str, Iterable[bool]]]
) -> dict[str, Any]:
    """Request ``ref`` (a positive number: the SDK ignores 0) to a publisher: for each
    (track SID, enabled per encoding, lowest first), which of its simulcast encodings to
    send."""
    return {
        "type": PUBLISHER_HINTS,
        "publisher": {
            "id": ref,
            "hints": [
                {
                    "track": track,
                    "encodings": [
                        {"layer_index": i, "enabled": on} for i, on in enumerate(enabled)
                    ],
                }
                for track, enabled in hints
            ],
        },
    }


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None


def _stats(levels: LinkLevels, sample: LinkSample) -> dict[str, Any]:
    # NetworkQualitySendStats/RecvStats of the SDK (bit/s, fraction, milliseconds)
    return {
        "bandwidth": {
            "actual": sample.actual_bps,
            "available": sample.available_bps,
            "level": levels.bandwidth,
        },
        "fractionLost": {"fractionLost": sample.loss, "level": levels.loss},
        "latency": {
            "jitter": _ms(sample.jitter_s),
            "rtt": _ms(sample.rtt_s),
            "level": levels.latency,
        },
    }


def _levels(quality: Quality, verbosity: int) -> dict[str, Any]:
    out: dict[str, Any] = {"level": quality.level}
    if verbosity < VERBOSITY_MODERATE:
        return out
    for kind in ("audio", "video"):
        send, recv = quality.kinds[kind]
        media: dict[str, Any] = {"send": send, "recv": recv}
        if verbosity >= VERBOSITY_DETAILED:
            # the link figures are the participant's, shared by its audio and video
            media["sendStats"] = _stats(quality.send, quality.send_sample)
            media["recvStats"] = _stats(quality.recv, quality.recv_sample)
        out[kind] = media
    return out


def network_quality_message(
    local: Quality | None, remotes: Mapping[str, Quality], request: QualityRequest
) -> dict[str, Any]:
    """The answer to the SDK's inputs: its own level (a number at ``minimal``, an object with
    per-kind send/receive levels from ``moderate``, with the figures at ``detailed``) and,
    if it asks, the others' levels at the remote verbosity."""
    out: dict[str, Any] = {"type": NETWORK_QUALITY, "local": None}
    if local is not None and request.local > 0:
        out["local"] = (
            local.level if request.local < VERBOSITY_MODERATE else _levels(local, request.local)
        )
    if request.remote > 0:
        out["remotes"] = [{"sid": sid, **_levels(q, request.remote)} for sid, q in remotes.items()]
    return out
