"""The per-layer retransmission cache that answers subscribers' NACKs."""

from __future__ import annotations

from edge_sfu.media.packet import MediaPacket


class RetransmissionCache:
    """The last ``size`` packets of one layer, indexed by their source sequence number.

    A ring indexed by ``seq % size``: storing costs one list assignment, and a lookup checks
    the stored packet's own sequence number so a slot overwritten by a newer packet is a miss.
    """

    __slots__ = ("_mask", "_slots")

    def __init__(self, size: int = 1024) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError("retransmission cache size must be a power of two")
        self._mask = size - 1
        self._slots: list[MediaPacket | None] = [None] * size

    def put(self, packet: MediaPacket) -> None:
        """Remember ``packet``."""
        self._slots[packet.seq & self._mask] = packet

    def get(self, seq: int) -> MediaPacket | None:
        """The packet with source sequence number ``seq``, if still held."""
        packet = self._slots[seq & self._mask]
        if packet is not None and packet.seq == seq:
            return packet
        return None

    def clear(self) -> None:
        """Forget everything (the source restarted)."""
        self._slots = [None] * len(self._slots)
