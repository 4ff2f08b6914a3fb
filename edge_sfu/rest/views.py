"""JSON renderings of the room model with Twilio's field names and links."""

from __future__ import annotations

from typing import Any

from ..rooms.model import Participant, PublishedTrack, Room, SubscribedTrack
from ..store import fmt_time

API = "/v1"


def room_url(base: str, room: Room) -> str:
    """The canonical URL of ``room``."""
    return f"{base}{API}/Rooms/{room.sid}"


def room_json(base: str, account_sid: str, room: Room) -> dict[str, Any]:
    """A Room resource."""
    url = room_url(base, room)
    s = room.settings
    return {
        "sid": room.sid,
        "status": room.status,
        "date_created": fmt_time(room.date_created),
        "date_updated": fmt_time(room.date_updated),
        "account_sid": account_sid,
        "enable_turn": True,
        "unique_name": room.unique_name,
        "status_callback": s.status_callback,
        "status_callback_method": s.status_callback_method,
        "end_time": fmt_time(room.end_time),
        "duration": room.duration,
        "type": s.type,
        "max_participants": s.max_participants,
        "max_participant_duration": s.max_participant_duration,
        "max_concurrent_published_tracks": 170,
        "record_participants_on_connect": s.record_participants_on_connect,
        "video_codecs": list(s.video_codecs),
        "media_region": "local",
        "audio_only": s.audio_only,
        "empty_room_timeout": s.empty_room_timeout,
        "unused_room_timeout": s.unused_room_timeout,
        "large_room": False,
        "url": url,
        "links": {
            "participants": f"{url}/Participants",
            "recordings": f"{url}/Recordings",
            "recording_rules": f"{url}/RecordingRules",
            "transcriptions": f"{url}/Transcriptions",
        },
    }


def participant_json(
    base: str, account_sid: str, p: Participant, network_quality_level: int | None = None
) -> dict[str, Any]:
    """A Participant resource; ``network_quality_level`` (0 to 5, None when not known or
    gone) is this unit's addition to Twilio's fields."""
    url = f"{base}{API}/Rooms/{p.room_sid}/Participants/{p.sid}"
    return {
        "sid": p.sid,
        "room_sid": p.room_sid,
        "account_sid": account_sid,
        "status": p.status,
        "identity": p.identity,
        "date_created": fmt_time(p.date_created),
        "date_updated": fmt_time(p.date_updated),
        "start_time": fmt_time(p.start_time),
        "end_time": fmt_time(p.end_time),
        "duration": p.duration,
        "network_quality_level": network_quality_level if p.connected else None,
        "url": url,
        "links": {
            "published_tracks": f"{url}/PublishedTracks",
            "subscribed_tracks": f"{url}/SubscribedTracks",
            "subscribe_rules": f"{url}/SubscribeRules",
            "anonymize": f"{url}/Anonymize",
        },
    }


def published_track_json(base: str, t: PublishedTrack) -> dict[str, Any]:
    """A PublishedTrack resource."""
    return _track_json(base, t, "PublishedTracks", {})


def subscribed_track_json(base: str, t: SubscribedTrack) -> dict[str, Any]:
    """A SubscribedTrack resource."""
    return _track_json(base, t, "SubscribedTracks", {"publisher_sid": t.publisher_sid})


def _track_json(
    base: str, t: PublishedTrack | SubscribedTrack, collection: str, extra: dict[str, Any]
) -> dict[str, Any]:
    # ``extra`` goes after ``participant_sid`` to keep Twilio's field order.
    return {
        "sid": t.sid,
        "participant_sid": t.participant_sid,
        **extra,
        "room_sid": t.room_sid,
        "name": t.name,
        "date_created": fmt_time(t.date_created),
        "date_updated": fmt_time(t.date_updated),
        "enabled": t.enabled,
        "kind": t.kind,
        "url": f"{base}{API}/Rooms/{t.room_sid}/Participants/{t.participant_sid}"
        f"/{collection}/{t.sid}",
    }


def subscribe_rules_json(p: Participant) -> dict[str, Any]:
    """A participant's SubscribeRules resource."""
    return {
        "participant_sid": p.sid,
        "room_sid": p.room_sid,
        "rules": p.subscribe_rules,
        "date_created": fmt_time(p.date_created),
        "date_updated": fmt_time(p.rules_updated or p.date_created),
    }


def recording_rules_json(room: Room) -> dict[str, Any]:
    """A room's RecordingRules resource."""
    return {
        "room_sid": room.sid,
        "rules": room.recording_rules,
        "date_created": fmt_time(room.date_created),
        "date_updated": fmt_time(room.rules_updated or room.date_created),
    }
