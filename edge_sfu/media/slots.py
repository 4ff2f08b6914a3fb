"""Publication slots: receive-only m-lines a participant publishes its tracks on.

Signaling asks its ``Transport`` for one per track the participant wants to publish
(``Transport.add_publication_slot``), offers it, and learns from the answer whether the
participant sends on it. aiortc stays behind this class: signaling never touches a
transceiver.
"""

from __future__ import annotations

from collections.abc import Callable

from aiortc import RTCRtpReceiver, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecCapability


def codec_preferences(kind: str, codec: str) -> list[RTCRtpCodecCapability]:
    """aiortc capabilities for ``codec`` (every profile of it), with RTX for video."""
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    caps = capabilities.codecs if capabilities is not None else []
    chosen = [c for c in caps if c.mimeType.split("/", 1)[1].lower() == codec.lower()]
    rtx = [c for c in caps if c.mimeType.lower().endswith("/rtx")]
    return chosen + rtx


class PublicationSlot:
    """One receive-only m-line offered for one track of the participant."""

    def __init__(self, transceiver: RTCRtpTransceiver, renegotiate: Callable[[], None]) -> None:
        self._transceiver = transceiver
        self._renegotiate = renegotiate
        self.closed = False

    @property
    def kind(self) -> str:
        """``audio`` or ``video``."""
        return str(self._transceiver.kind)

    @property
    def mid(self) -> str | None:
        """The m-line's ``mid``, once an offer included it."""
        mid = self._transceiver.mid
        return None if mid is None else str(mid)

    @property
    def accepted(self) -> bool:
        """Whether the participant's answer sends on this m-line."""
        return self._transceiver.currentDirection in ("recvonly", "sendrecv")

    def close(self) -> None:
        """Stop receiving here: the m-line goes ``inactive`` at the next offer. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self._transceiver.direction = "inactive"
        self._renegotiate()
