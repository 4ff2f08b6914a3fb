"""WHIP (RFC 9725) and WHEP endpoints: publish into a room, or play one, over plain HTTP.

Any WHIP encoder (OBS, GStreamer, FFmpeg) publishes into a room of the unit, any WHEP player
plays a room or one participant; each session is a participant of the room like any other.
``docs/whip-whep.md`` describes the endpoints.
"""

from .routes import WHIP, WHIP_SETTINGS, setup
from .session import WhipService, WhipSession, WhipSettings

__all__ = ["WHIP", "WHIP_SETTINGS", "WhipService", "WhipSession", "WhipSettings", "setup"]
