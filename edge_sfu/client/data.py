"""Data tracks of the Python client: ``LocalDataTrack`` sends, ``RemoteDataTrack`` receives.

Both ride on negotiated data channels whose stream id the server chooses and announces
(``published`` / ``track-subscribed`` carry ``channel``; see ``docs/signaling.md``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection

from ..media.data import Message, message_size
from ..media.errors import DataMessageTooLarge
from .events import Emitter

#: Twilio's limit, used until the server's ``joined`` says otherwise.
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024


def open_negotiated(pc: RTCPeerConnection, label: str, info: dict[str, Any]) -> RTCDataChannel:
    """Our side of a channel the server announced (``info``: id and reliability)."""
    return pc.createDataChannel(
        label,
        negotiated=True,
        id=int(info["id"]),
        ordered=bool(info.get("ordered", True)),
        maxRetransmits=info.get("max_retransmits"),
        maxPacketLifeTime=info.get("max_packet_life_time"),
    )


class LocalDataTrack:
    """A data track we publish. ``send`` works once ``published`` is set (``sid`` known);
    messages sent before are dropped, as with Twilio's ``LocalDataTrack``.

    Reliable and ordered by default; ``max_retransmits`` or ``max_packet_life_time`` (ms)
    makes it lossy, ``ordered=False`` lets messages overtake each other.
    """

    kind = "data"

    def __init__(
        self,
        client_id: str,
        name: str,
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_life_time: int | None = None,
    ) -> None:
        if max_retransmits is not None and max_packet_life_time is not None:
            raise ValueError("give max_retransmits or max_packet_life_time, not both")
        self.client_id = client_id
        self.name = name
        self.ordered = ordered
        self.max_retransmits = max_retransmits
        self.max_packet_life_time = max_packet_life_time
        self.max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES
        self.sid: str | None = None
        self.channel: RTCDataChannel | None = None
        self.published = asyncio.Event()
        self.failure: tuple[int, str] | None = None
        self.messages_sent = 0
        self.messages_dropped = 0

    @property
    def reliable(self) -> bool:
        """Whether every message arrives (no retransmission limit)."""
        return self.max_retransmits is None and self.max_packet_life_time is None

    def request(self) -> dict[str, Any]:
        """The ``publish`` entry for this track."""
        out: dict[str, Any] = {
            "client_id": self.client_id,
            "kind": "data",
            "name": self.name,
            "ordered": self.ordered,
        }
        if self.max_retransmits is not None:
            out["max_retransmits"] = self.max_retransmits
        if self.max_packet_life_time is not None:
            out["max_packet_life_time"] = self.max_packet_life_time
        return out

    def send(self, message: Message) -> bool:
        """Send to every subscriber; False when not published (yet or any more).

        Raises ``DataMessageTooLarge`` over the server's limit (16 KiB by default).
        """
        size = message_size(message)
        if size > self.max_message_bytes:
            raise DataMessageTooLarge(size, self.max_message_bytes)
        channel = self.channel
        if channel is None or channel.readyState != "open":
            self.messages_dropped += 1
            return False
        channel.send(message)
        self.messages_sent += 1
        return True

    def _open(self, pc: RTCPeerConnection, info: dict[str, Any]) -> None:
        if self.channel is None:
            self.channel = open_negotiated(pc, self.name, info)

    def close(self) -> None:
        """Close our side of the channel (after unpublishing)."""
        if self.channel is not None and self.channel.readyState != "closed":
            self.channel.close()


class RemoteDataTrack(Emitter):
    """A data track we receive. Events: ``message`` (str or bytes)."""

    kind = "data"

    def __init__(self, sid: str, name: str, channel: RTCDataChannel) -> None:
        super().__init__()
        self.sid = sid
        self.name = name
        self.channel = channel
        self.ordered = bool(channel.ordered)
        self.max_retransmits: int | None = channel.maxRetransmits
        self.max_packet_life_time: int | None = channel.maxPacketLifeTime
        channel.on("message", lambda message: self.emit("message", message))

    @property
    def reliable(self) -> bool:
        """Whether every message arrives (no retransmission limit)."""
        return self.max_retransmits is None and self.max_packet_life_time is None

    def close(self) -> None:
        """Close our side of the channel (after the subscription ended)."""
        if self.channel.readyState != "closed":
            self.channel.close()
