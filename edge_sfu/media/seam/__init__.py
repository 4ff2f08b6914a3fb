"""Every use of aiortc, aioice and pylibsrtp internals, in one package.

aiortc is a complete WebRTC endpoint: its ``RTCRtpReceiver`` reassembles and decodes
everything it receives, its ``RTCRtpSender`` pulls frames from a track and encodes them.
An SFU wants neither. It wants aiortc's ICE, DTLS, SRTP, SDP and BUNDLE handling, and then
raw RTP in both directions. The clean seam is the DTLS transport's ``RtpRouter``.

| module | what it does around aiortc |
|---|---|
| ``receive`` | ``take_over_receiver``: raw RTP/RTCP, no decoder; ``retarget_receiver`` |
| ``send`` | ``take_over_sender`` (no encoder) and ``SendPath`` (protect and send synchronously) |
| ``egress`` | RTP protected into an arena and sent per burst: ``sendmmsg``, UDP GSO |
| ``pacing`` | ``Pacer``: a congested transport's RTP released at a rate, urgent first |
| ``ingress`` | SRTP handled in the datagram callback, burst reads, empty datagrams dropped |
| ``repair`` | ``ReceiverRepair``: a decoding receiver re-NACKs and skips to a keyframe |
| ``downlink`` | a decoding peer's transport-wide sequence numbers, and RTCP sent on its transport |
| ``feedback`` | ``tap_rtcp``: raw RTCP (transport-cc feedback aiortc cannot parse) |
| ``extensions`` | rid, repaired-rid and transport-cc negotiated; header extensions parsed |
| ``simulcast`` | rid/simulcast lines in offers and answers (RFC 8853); SIM SSRC groups read |
| ``ports`` | ``restrict_ports``, ``restrict_addresses``: candidates in a port range, on addresses |
| ``codecs`` | aiortc's H.264/VP8 (de)packetizers without its codecs |
| ``offers`` | ``stable_offer``: re-offers keep negotiated payload types and extension ids |
| ``quirks`` | msid of track-less senders, SCTP bundling, codecs, keyframe flag, REMB hints |
| ``encoders`` | aiortc's own encoders below its floors: a video target, Opus's rate |
| ``packets`` | aiortc's RTP/RTCP classes (for ``isinstance``) and a light RTP parser |

``PRIVATE_NAMES`` lists every private attribute of those libraries the seam reads, writes
or mimics. ``tests/unit/edge_sfu/media/test_seam_contract.py`` checks each of them, and each
signature used, on real objects, so an upgrade fails there first and loudly.

Importing the package registers the header extensions and RTCP feedback the SFU negotiates
in aiortc's process-wide tables (``negotiate_header_extensions``), so every peer connection
of the process, the SFU's and the Python client's, offers and answers the same ones.
"""

from __future__ import annotations

from edge_sfu.media.seam import packets
from edge_sfu.media.seam.codecs import h264_depayload, h264_packetize, vp8_depayload
from edge_sfu.media.seam.downlink import send_rtcp, tap_transport_sequence
from edge_sfu.media.seam.egress import (
    FanOut,
    SentHandler,
    after_sends,
    configure_fan_out,
    fan_out,
    flush_all,
    with_transport_sequence,
)
from edge_sfu.media.seam.encoders import (
    MIN_VIDEO_BPS,
    drop_encoder,
    preset_audio_bitrate,
    sent_octets,
    set_video_bitrate,
    video_bitrate,
)
from edge_sfu.media.seam.extensions import (
    EXT_ABS_SEND_TIME,
    EXT_AUDIO_LEVEL,
    EXT_MID,
    EXT_REPAIRED_RTP_STREAM_ID,
    EXT_RTP_STREAM_ID,
    EXT_TRANSPORT_CC,
    OFFER_TRANSPORT_CC,
    ExtensionIds,
    audio_level,
    header_extensions,
    negotiate_header_extensions,
    transport_sequence,
)
from edge_sfu.media.seam.feedback import tap_rtcp
from edge_sfu.media.seam.ingress import (
    ArrivalHook,
    arrival_time,
    drain_socket_reads,
    harden_ice_input,
    install_fast_receive,
)
from edge_sfu.media.seam.offers import stable_offer
from edge_sfu.media.seam.packets import *  # noqa: F403  (its __all__ is re-exported below)
from edge_sfu.media.seam.ports import restrict_addresses, restrict_ports
from edge_sfu.media.seam.quirks import (
    keep_sctp_transport,
    negotiated_codecs,
    set_msid,
    take_keyframe_request,
    tolerate_overtaken_connect,
    watch_bitrate_hints,
)
from edge_sfu.media.seam.receive import (
    LevelHandler,
    ReceiveParams,
    RtcpHandler,
    RtpHandler,
    StreamHandler,
    retarget_receiver,
    take_over_receiver,
)
from edge_sfu.media.seam.repair import (
    DECODED_AUDIO_FRAMES,
    DECODED_VIDEO_FRAMES,
    ReceiverRepair,
    bound_decoded_frames,
)
from edge_sfu.media.seam.send import (
    SendParams,
    SendPath,
    take_over_sender,
)
from edge_sfu.media.seam.simulcast import (
    RID,
    SsrcSimulcast,
    answered_rids,
    offer_simulcast,
    ssrc_simulcast,
)

#: (owner, name): the private attributes of aiortc, aioice, pylibsrtp and asyncio the seam
#: relies on. ``owner`` names the class (attributes of its instances count) or module.
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    # receive, send: register adapters in the DTLS transport's RtpRouter
    ("RTCDtlsTransport", "_register_rtp_receiver"),
    ("RTCDtlsTransport", "_unregister_rtp_receiver"),
    ("RTCDtlsTransport", "_register_rtp_sender"),
    ("RTCDtlsTransport", "_unregister_rtp_sender"),
    # the methods the adapters stand in for (aiortc calls them on whatever is registered)
    ("RTCRtpReceiver", "_handle_rtp_packet"),
    ("RTCRtpReceiver", "_handle_rtcp_packet"),
    ("RTCRtpReceiver", "_handle_disconnect"),
    ("RTCRtpSender", "_handle_rtcp_packet"),
    ("RTCRtpSender", "_ssrc"),
    # send: SRTP state and the nominated ICE pair's socket
    ("RTCDtlsTransport", "_state"),
    ("RTCDtlsTransport", "_tx_srtp"),
    ("RTCIceTransport", "_connection"),
    ("aioice.Connection", "_nominated"),
    ("pylibsrtp", "_binding"),  # send, egress: its lib.srtp_protect, into our own buffers
    ("pylibsrtp.Session", "_srtp"),
    ("asyncio datagram transport", "_sock"),
    # ingress: route SRTP in the datagram callback, read bursts
    ("RTCDtlsTransport", "_rx_srtp"),
    ("RTCDtlsTransport", "_rtp_router"),
    # ingress: route a new SSRC by its mid extension (simulcast) and remember it
    ("RtpRouter", "mid_table"),
    ("RtpRouter", "ssrc_table"),
    ("RtpRouter", "payload_type_table"),
    ("aioice.Connection", "_protocols"),
    ("asyncio datagram transport", "_loop"),
    ("asyncio datagram transport", "_conn_lost"),
    ("asyncio event loop", "_add_reader"),
    ("asyncio event loop", "_remove_reader"),
    # extensions: aiortc's process-wide tables of offered header extensions and codecs
    ("aiortc.codecs", "HEADER_EXTENSIONS"),
    ("aiortc.codecs", "CODECS"),
    ("aiortc.codecs", "is_rtx"),
    # codecs
    ("H264Encoder", "_packetize"),
    ("H264Encoder", "_split_bitstream"),
    # encoders: the sender's encoder, and the targets the encoders' setters clamp
    ("RTCRtpSender", "_RTCRtpSender__encoder"),
    ("RTCRtpSender", "_RTCRtpSender__octet_count"),
    ("H264Encoder", "_H264Encoder__target_bitrate"),
    ("Vp8Encoder", "_Vp8Encoder__target_bitrate"),
    # quirks
    ("RTCRtpSender", "_stream_id"),
    ("RTCRtpSender", "_track_id"),
    ("RTCRtpSender", "_RTCRtpSender__force_keyframe"),
    ("RTCRtpTransceiver", "_codecs"),
    ("RTCSctpTransport", "_bundled"),
    ("RTCPeerConnection", "_RTCPeerConnection__connect"),
    # offers: keep each negotiated m-line's numbering in SFU re-offers
    ("RTCRtpTransceiver", "_headerExtensions"),
    ("RTCRtpTransceiver", "_get_mline_index"),
    ("RTCRtpSender", "_rtx_ssrc"),
    # feedback: raw RTCP before aiortc parses it
    ("RTCDtlsTransport", "_handle_rtcp_data"),
    # repair: a decoding video receiver's jitter buffer, NACK state and RTCP feedback
    ("RTCRtpReceiver", "_RTCRtpReceiver__jitter_buffer"),
    ("RTCRtpReceiver", "_RTCRtpReceiver__nack_generator"),
    ("RTCRtpReceiver", "_RTCRtpReceiver__codecs"),
    ("RTCRtpReceiver", "_send_rtcp_nack"),
    ("RTCRtpReceiver", "_send_rtcp_pli"),
    ("JitterBuffer", "_origin"),
    ("JitterBuffer", "_packets"),
    ("JitterBuffer", "remove"),
    ("JitterBuffer", "add"),
    ("NackGenerator", "missing"),
    ("RemoteStreamTrack", "_queue"),  # repair: a decoded-frame queue with a bound
    # downlink: a decoding peer's RTP on arrival, and RTCP out
    ("RTCDtlsTransport", "_handle_rtp_data"),
    ("RTCDtlsTransport", "_send_rtp"),
)

negotiate_header_extensions()

__all__ = [
    "DECODED_AUDIO_FRAMES",
    "DECODED_VIDEO_FRAMES",
    "EXT_ABS_SEND_TIME",
    "EXT_AUDIO_LEVEL",
    "EXT_MID",
    "EXT_REPAIRED_RTP_STREAM_ID",
    "EXT_RTP_STREAM_ID",
    "EXT_TRANSPORT_CC",
    "MIN_VIDEO_BPS",
    "OFFER_TRANSPORT_CC",
    "PRIVATE_NAMES",
    "RID",
    "ArrivalHook",
    "ExtensionIds",
    "FanOut",
    "LevelHandler",
    "ReceiveParams",
    "ReceiverRepair",
    "RtcpHandler",
    "RtpHandler",
    "SendParams",
    "SendPath",
    "SentHandler",
    "SsrcSimulcast",
    "StreamHandler",
    "after_sends",
    "answered_rids",
    "arrival_time",
    "audio_level",
    "bound_decoded_frames",
    "configure_fan_out",
    "drain_socket_reads",
    "drop_encoder",
    "fan_out",
    "flush_all",
    "h264_depayload",
    "h264_packetize",
    "harden_ice_input",
    "header_extensions",
    "install_fast_receive",
    "keep_sctp_transport",
    "negotiate_header_extensions",
    "negotiated_codecs",
    "offer_simulcast",
    "preset_audio_bitrate",
    "restrict_addresses",
    "restrict_ports",
    "retarget_receiver",
    "send_rtcp",
    "sent_octets",
    "set_msid",
    "set_video_bitrate",
    "ssrc_simulcast",
    "stable_offer",
    "take_keyframe_request",
    "take_over_receiver",
    "take_over_sender",
    "tap_rtcp",
    "tap_transport_sequence",
    "tolerate_overtaken_connect",
    "transport_sequence",
    "video_bitrate",
    "vp8_depayload",
    "watch_bitrate_hints",
    "with_transport_sequence",
]
__all__ += packets.__all__
