"""Python client of the edge SFU (aiortc): join a room with a token, publish, receive, events.

    room = await edge_sfu.client.connect("ws://unit.local:8080/v1/signaling", token)
    camera = await room.publish_encoded_video("camera")   # pre-encoded H.264
    camera.push(access_unit, keyframe, timestamp_us)
    chat = await room.publish_data("chat")                # a data track (reliable, ordered)
    chat.send("hello")
    room.on("track_subscribed", lambda track, pub, who: ...)

For field devices, kiosks joining another unit's room, and tests. ``room`` holds the API,
``model`` what the client knows of the room, ``connection`` the signaling socket.
"""

from .connection import ConnectError
from .data import LocalDataTrack, RemoteDataTrack
from .events import Emitter
from .media import EncodedVideoTrack
from .model import LocalTrackPublication, RemoteParticipant, RemoteTrackPublication
from .room import PublishError, Room, connect

__all__ = [
    "ConnectError",
    "Emitter",
    "EncodedVideoTrack",
    "LocalDataTrack",
    "LocalTrackPublication",
    "PublishError",
    "RemoteDataTrack",
    "RemoteParticipant",
    "RemoteTrackPublication",
    "Room",
    "connect",
]
