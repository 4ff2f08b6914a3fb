"""Recordings and compositions, with Twilio's statuses and field names.

Plain dataclasses beside the room model (Twilio files recordings under rooms):
``edge_sfu.recording`` is their only writer, the ``Store`` keeps them, REST renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

RecordingStatus = Literal["processing", "completed", "deleted", "failed"]
CompositionStatus = Literal["enqueued", "processing", "completed", "deleted", "failed"]

#: Container and file extension by track kind, as Twilio records them.
CONTAINERS = {"audio": "mka", "video": "mkv", "data": "jsonl"}
#: Twilio's codec names, by the media engine's.
CODECS = {"OPUS": "OPUS", "H264": "H264", "VP8": "VP8", "DATA": "json"}


@dataclass
class Recording:
    """One recorded track (Twilio's Recording, SID ``RT...``)."""

    sid: str
    room_sid: str
    participant_sid: str
    source_sid: str
    track_name: str
    kind: str
    codec: str
    container_format: str
    status: RecordingStatus
    #: The file's name in the recordings directory.
    file_name: str
    date_created: datetime
    date_updated: datetime
    #: Milliseconds from the room's start to the recording's first frame.
    offset: int = 0
    #: Whole seconds, once completed.
    duration: int | None = None
    size: int = 0
    date_deleted: datetime | None = None

    @property
    def grouping_sids(self) -> dict[str, str]:
        """Twilio's ``grouping_sids``: the room and the participant."""
        return {"room_sid": self.room_sid, "participant_sid": self.participant_sid}


@dataclass
class Composition:
    """One composition of a room's recordings (Twilio's Composition, SID ``CJ...``)."""

    sid: str
    room_sid: str
    status: CompositionStatus
    format: str
    resolution: str
    #: VideoLayout, AudioSources, AudioSourcesExcluded, Trim, as validated.
    spec: dict[str, Any]
    status_callback: str | None
    status_callback_method: str
    date_created: datetime
    date_updated: datetime
    file_name: str = ""
    duration: int = 0
    size: int = 0
    bitrate: int = 0
    progress: int = 0
    date_completed: datetime | None = None
    date_deleted: datetime | None = None
    error: str = ""


@dataclass
class CompositionHook:
    """A composition made for every room that ends (Twilio's CompositionHook, ``HK...``)."""

    sid: str
    friendly_name: str
    enabled: bool
    format: str
    resolution: str
    spec: dict[str, Any]
    status_callback: str | None
    status_callback_method: str
    date_created: datetime
    date_updated: datetime
    extra: dict[str, Any] = field(default_factory=dict)
