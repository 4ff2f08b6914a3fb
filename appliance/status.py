"""The daemon's status as the control socket and the status page show it."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from edge_sfu.context import LiveSignals
from edge_sfu.stats import SubscriberCounters, TrackCounters

from . import __version__
from .state import DaemonState

_STATE_WORDS = {
    "starting": "Starting",
    "idle": "Idle",
    "joining": "Joining the call",
    "in_call": "In a call",
    "leaving": "Leaving the call",
    "error": "Not connected",
    "serving": "Serving rooms",
    "live": "Live",
    "reconnecting": "Reconnecting",
    "stopped": "Stopped",
}


def state_in_words(role_state: str, muted: bool, missing: Iterable[str]) -> str:
    """The unit's state as a person says it: "In a call — muted (without microphone, speaker)".

    The same words as ``docs/roles.md``: muted only counts in a call, and every part the unit
    runs without is named.
    """
    words = _STATE_WORDS.get(role_state, role_state.replace("_", " ").capitalize())
    if muted and role_state == "in_call":
        words += " — muted"
    parts = sorted(missing)
    if parts:
        words += " (without " + ", ".join(parts) + ")"
    return words


def status_summary(state: DaemonState) -> dict[str, Any]:
    """A JSON-able summary of the daemon, for the control socket and the status page."""
    rooms = [] if state.sfu is None else state.sfu.rooms.live_rooms()
    rates = state.track_rates.sample()
    counters = state.track_rates.latest.tracks
    identities = {p.sid: p.identity for room in rooms for p in room.participants.values()}
    signals = LiveSignals() if state.sfu is None else state.sfu.signals
    status = state.status
    return {
        "version": __version__,
        "role": state.settings.unit.role,
        "state": status.role_state,
        "muted": status.muted,
        "missing": sorted(status.degraded),
        "state_text": state_in_words(status.role_state, status.muted, status.degraded),
        "status": status.line,
        "uptime_s": round(time.monotonic() - status.started_at),
        "degraded": dict(status.degraded),
        "rooms": [
            {
                "sid": room.sid,
                "name": room.unique_name,
                # the identity of who speaks now, or the last who spoke (None: nobody yet)
                "dominant_speaker": identities.get(signals.dominant_speakers.get(room.sid, "")),
                "participants": [
                    {
                        "sid": p.sid,
                        "identity": p.identity,
                        "network_quality_level": signals.network_quality.get(p.sid),
                        "tracks": [
                            {
                                "sid": t.sid,
                                "kind": t.kind,
                                "name": t.name,
                                "enabled": t.enabled,
                                "bitrate_kbps": rates.get(t.sid, 0.0),
                                "subscribers": [
                                    _subscriber(
                                        sub,
                                        identities,
                                        counters.get(t.sid),
                                        state.track_rates.frame_rates.get(t.sid, {}),
                                    )
                                    for sub in (
                                        counters[t.sid].subscribers if t.sid in counters else ()
                                    )
                                ],
                            }
                            for t in p.published.values()
                        ],
                    }
                    for p in room.participants.values()
                    if p.connected
                ],
            }
            for room in rooms
        ],
        "media": state.media_stats() if state.media_stats is not None else {},
        "last_errors": list(status.last_errors),
        **(state.role_details() if state.role_details is not None else {}),
    }


def _subscriber(
    sub: SubscriberCounters,
    identities: dict[str, str],
    track: TrackCounters | None,
    frame_rates: dict[str, float],
) -> dict[str, Any]:
    """What the SFU knows of one subscriber's copy of a track (None: not reported yet).

    Frame rate and size are those of the layer the subscriber gets (the SFU forwards frames,
    it does not decode them: a size is known when the publisher declared its layers). The
    allocation says why: the subscriber's downlink estimate, the track's priority for it, the
    layer its render size asks for and the most it is allowed, and whether (and why) the
    track is switched off for it.
    """
    layer = None if track is None or sub.layer is None else track.layers.get(sub.layer)
    return {
        "identity": identities.get(sub.participant_sid, sub.participant_sid),
        "layer": sub.layer,
        "fps": None if sub.layer is None else frame_rates.get(sub.layer),
        "size": f"{layer.width}x{layer.height}" if layer is not None and layer.width else None,
        "loss_pct": None if sub.fraction_lost is None else round(sub.fraction_lost * 100, 1),
        "packets_lost": sub.packets_lost,
        "jitter_ms": None if sub.jitter_s is None else round(sub.jitter_s * 1000, 1),
        "rtt_ms": None if sub.rtt_s is None else round(sub.rtt_s * 1000, 1),
        "estimate_kbps": (
            None if sub.available_outgoing_bps is None else round(sub.available_outgoing_bps / 1000)
        ),
        "paced_kbps": None if sub.pacing_bps is None else round(sub.pacing_bps / 1000),
        "priority": sub.priority,
        "wanted_layer": sub.preferred_layer,
        "allowed_layer": sub.allowed_layer,
        "switched_off": sub.switched_off,
        "why": sub.reason,
    }
