"""Small corrections to aiortc's peer connection for an SFU: msid, bundling, codecs, keyframes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from aiortc import RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtcpPsfbPacket, unpack_remb_fci

logger = logging.getLogger(__name__)

#: RTCP PSFB FMT 15: application-layer feedback, which is how REMB travels.
_PSFB_APP_LAYER: Final = 15


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs offer/answer settled on for a transceiver (empty before)."""
    return list(getattr(transceiver, "_codecs", []) or [])


def set_msid(sender: RTCRtpSender, stream_id: str, track_id: str) -> None:
    """Set what the SDP's ``a=msid`` says for a track-less sender: stream and track ids."""
    sender._stream_id = stream_id
    sender._track_id = track_id


def keep_sctp_transport(pc: RTCPeerConnection) -> None:
    """Stop aiortc from closing the one bundled transport when SCTP came first.

    With ``max-bundle``, a data channel made before any transceiver gets its own DTLS
    transport, and later transceivers share it. aiortc marks the transceivers bundled but
    not the SCTP transport; when an answer lists an audio or video ``mid`` first, aiortc
    "re-homes" SCTP onto the primary transport, which is the same object, and stops it as
    an old one: ICE never starts and nothing connects. Marking SCTP bundled skips that
    step (the flag is read nowhere else but for trickled candidates, which we never use).
    """
    sctp: Any = pc.sctp
    if sctp is not None:
        sctp._bundled = True


#: aiortc's connect pass, started after each description is applied (name-mangled).
_CONNECT = "_RTCPeerConnection__connect"


def tolerate_overtaken_connect(pc: RTCPeerConnection) -> None:
    """Keep an earlier connect pass from failing on an answer that is half applied.

    After each description, aiortc starts a task that walks the transceivers and starts
    their transports, senders and receivers. A pass still waiting for ICE or DTLS (a new
    participant renegotiates at once) may resume while ``setRemoteDescription(answer)``
    waits for its remote candidates: the new m-line's transceiver is already marked
    receiving, but the answer is not yet the remote description, so aiortc indexes past
    its end and the task dies with ``IndexError``, logged as "Task exception was never
    retrieved". Nothing is lost (the answer starts a pass of its own once applied, which
    does the same work), so that one case ends the pass quietly; any other error is raised.
    """
    if getattr(pc, "_edge_sfu_connect", False):
        return
    original = getattr(pc, _CONNECT)

    async def connect() -> None:
        try:
            await original()
        except IndexError:
            if not _answer_half_applied(pc):
                raise
            logger.debug("connect pass overtaken by an answer being applied; its own follows")

    setattr(pc, _CONNECT, connect)
    pc._edge_sfu_connect = True  # type: ignore[attr-defined]


def _answer_half_applied(pc: RTCPeerConnection) -> bool:
    remote = pc.remoteDescription
    sections = remote.sdp.count("\nm=") if remote is not None else 0
    return any(
        (index := t._get_mline_index()) is not None and index >= sections
        for t in pc.getTransceivers()
    )


#: aiortc notes a subscriber's PLI/FIR in this private flag and acts on it only when it
#: encodes itself; a sender of pre-encoded frames must read it to know a keyframe is wanted.
_FORCE_KEYFRAME = "_RTCRtpSender__force_keyframe"


def take_keyframe_request(sender: RTCRtpSender) -> bool:
    """Whether the receiver asked ``sender`` for a keyframe since the last call (clears it)."""
    if getattr(sender, _FORCE_KEYFRAME, False):
        setattr(sender, _FORCE_KEYFRAME, False)
        return True
    return False


def watch_bitrate_hints(
    sender: RTCRtpSender, on_hint: Callable[[int], None], *, keep_from_encoder: bool = False
) -> None:
    """Call ``on_hint(bps)`` with each REMB the receiver sends to ``sender``.

    aiortc hands a REMB only to its own encoder (``target_bitrate``, clamped to its own
    range); a sender of pre-encoded frames must see the receiver's figure itself to choose
    what to send. With ``keep_from_encoder`` aiortc's encoder no longer sees REMB at all:
    the caller sets its target (``encoders.set_video_bitrate``). Wraps the sender's RTCP
    handler on the instance; every other packet still reaches aiortc as before. Installing
    it twice on one sender is a no-op.
    """
    if getattr(sender, "_edge_sfu_hints", False):
        return
    original = sender._handle_rtcp_packet

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == _PSFB_APP_LAYER:
            try:
                bitrate, _ = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate = None  # an application-layer message that is not REMB
            if bitrate is not None:
                try:
                    on_hint(bitrate)
                except Exception:
                    logger.exception("bitrate hint callback failed")
                if keep_from_encoder:
                    return
        await original(packet)

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
    sender._edge_sfu_hints = True  # type: ignore[attr-defined]
