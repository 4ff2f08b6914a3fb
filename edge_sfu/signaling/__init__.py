"""Signaling: the ``/v1/signaling`` WebSocket protocol (v1), sessions and the room/media glue.

``setup(app)`` mounts the WebSocket, the join page (``/join/{room}``) and the browser
client (``/static/edge-video.js``) on the SFU application. ``docs/signaling.md`` documents
the protocol.
"""

from .local import LocalParticipant
from .protocol import PROTOCOL_VERSION, ProtocolError
from .routes import MEDIA_SETTINGS, SIGNALING, SIGNALING_SETTINGS, setup
from .service import SignalingService
from .session import SignalingSession, SignalingSettings

__all__ = [
    "MEDIA_SETTINGS",
    "PROTOCOL_VERSION",
    "SIGNALING",
    "SIGNALING_SETTINGS",
    "LocalParticipant",
    "ProtocolError",
    "SignalingService",
    "SignalingSession",
    "SignalingSettings",
    "setup",
]
