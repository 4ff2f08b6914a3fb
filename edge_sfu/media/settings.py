"""Media-plane settings, filled by the appliance from its configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiortc import RTCConfiguration


@dataclass(frozen=True)
class IceServer:
    """One STUN or TURN server (``urls`` like ``stun:host:3478`` or ``turn:host?transport=udp``)."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class MediaSettings:
    """Knobs of the forwarding engine.

    ``ice_servers`` is empty by default: a LAN appliance offers host candidates only and
    contacts nothing it was not told to. (aiortc falls back to a public Google STUN server
    when given ``None``; we always pass an explicit list.) Note that aiortc uses at most
    one STUN and one TURN server from the list.
    """

    ice_servers: tuple[IceServer, ...] = ()
    # UDP ports for ICE candidates, inclusive (None: ephemeral ports from the kernel).
    # aioice has no such option; see edge_sfu.media.seam.restrict_ports.
    udp_port_range: tuple[int, int] | None = None
    # Local addresses to gather host candidates on (None: every interface's, as aioice does;
    # it skips loopback, so ("127.0.0.1",) is how tests keep media on this machine).
    # See edge_sfu.media.seam.restrict_addresses.
    host_addresses: tuple[str, ...] | None = None
    # Largest data-track message accepted, in bytes (Twilio's limit is 16 KiB).
    max_data_message_bytes: int = 16 * 1024
    # Packets kept per layer for answering NACKs (a power of two).
    retransmission_cache_packets: int = 1024
    # At most one keyframe request per layer in this many seconds.
    keyframe_request_interval_s: float = 0.5
    # Interval between RTCP sender reports to each subscriber.
    sender_report_interval_s: float = 1.0
    # Bitrate the SFU tells publishers (REMB) they may send, per video track.
    publisher_max_bitrate: int = 2_500_000

    def __post_init__(self) -> None:
        if self.udp_port_range is not None:
            low, high = self.udp_port_range
            if not 1024 <= low <= high <= 65535:
                raise ValueError(f"bad UDP port range {low}-{high}")

    def rtc_configuration(self) -> RTCConfiguration:
        """The aiortc configuration: explicit ICE server list, one bundled transport."""
        # aiortc/PyAV load on the first WebRTC session, not at start.
        from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

        servers = [
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in self.ice_servers
        ]
        return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
