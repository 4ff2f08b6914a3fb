"""RTP header extensions: the ones the SFU negotiates, and a parser that never raises.

aiortc offers the extensions of its module-global table ``aiortc.codecs.HEADER_EXTENSIONS``
(mid, audio level, abs-send-time) and the RTCP feedback of its codec table. Simulcast needs
``rtp-stream-id`` (RFC 8852: which encoding a packet belongs to) and
``repaired-rtp-stream-id`` (which encoding an RTX packet repairs); bandwidth estimation
needs the transport-wide sequence number and ``transport-cc`` feedback.
``negotiate_header_extensions`` adds them to aiortc's tables (for every peer connection of
the process), with fixed ids that are unique across the BUNDLE group, so the ingress path
can read them without looking anything up per transport.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from aiortc import codecs as _codecs
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpHeaderExtensionParameters

URI_MID: Final = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_AUDIO_LEVEL: Final = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_ABS_SEND_TIME: Final = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_RTP_STREAM_ID: Final = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
URI_REPAIRED_RTP_STREAM_ID: Final = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
URI_TRANSPORT_CC: Final = (
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
)

#: Extension ids in every SFU offer; one id space for the whole BUNDLE group, and all below
#: 15 so that the one-byte header form (RFC 8285) carries them. 1 to 3 are aiortc's own.
EXT_MID: Final = 1
EXT_AUDIO_LEVEL: Final = 2
EXT_ABS_SEND_TIME: Final = 3
EXT_TRANSPORT_CC: Final = 4
EXT_RTP_STREAM_ID: Final = 5
EXT_REPAIRED_RTP_STREAM_ID: Final = 6

#: (kind, id, uri) added to aiortc's table: rids for video, transport-cc for both kinds.
_RIDS: Final = (
    ("video", EXT_RTP_STREAM_ID, URI_RTP_STREAM_ID),
    ("video", EXT_REPAIRED_RTP_STREAM_ID, URI_REPAIRED_RTP_STREAM_ID),
)
_TRANSPORT_CC: Final = (
    ("audio", EXT_TRANSPORT_CC, URI_TRANSPORT_CC),
    ("video", EXT_TRANSPORT_CC, URI_TRANSPORT_CC),
)
#: aiortc's own entries, which the ids above must not collide with.
_EXPECTED: Final = (
    ("audio", EXT_MID, URI_MID),
    ("audio", EXT_AUDIO_LEVEL, URI_AUDIO_LEVEL),
    ("video", EXT_MID, URI_MID),
    ("video", EXT_ABS_SEND_TIME, URI_ABS_SEND_TIME),
)
TRANSPORT_CC_FEEDBACK: Final = RTCRtcpFeedback(type="transport-cc")

#: Whether offers and answers negotiate transport-cc (the extension and its RTCP feedback).
#: On: the SFU sends transport-cc feedback (``Transport.bandwidth``). Without feedback it must
#: be off: a browser that negotiated it estimates its uplink from that feedback alone, and
#: without any it keeps its start rate and then backs off (Chromium 156 here: one camera sent
#: 300 kbit/s, then fell to about 100 kbit/s within 12 s).
OFFER_TRANSPORT_CC: Final = True


def negotiate_header_extensions(*, transport_cc: bool = OFFER_TRANSPORT_CC) -> None:
    """Make every offer and answer of this process carry rid and repaired-rid (video), and
    transport-cc on audio and video when ``transport_cc``.

    Adds the extensions to ``aiortc.codecs.HEADER_EXTENSIONS`` (read by ``createOffer`` and
    when answering) and, with ``transport_cc``, ``a=rtcp-fb:<pt> transport-cc`` to every
    audio and video codec of ``aiortc.codecs.CODECS`` except RTX; without it, removes them.
    Idempotent either way. Raises RuntimeError if aiortc's own ids moved (they would clash
    with ours).
    """
    table = _codecs.HEADER_EXTENSIONS
    for kind, ext_id, uri in _EXPECTED:
        if not any(e.id == ext_id and e.uri == uri for e in table[kind]):
            raise RuntimeError(f"aiortc no longer offers {uri} as id {ext_id} for {kind}")
    for kind, ext_id, uri in _RIDS + _TRANSPORT_CC:
        table[kind][:] = [e for e in table[kind] if e.uri != uri]
        if transport_cc or uri != URI_TRANSPORT_CC:
            table[kind].append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=uri))
    for kind in ("audio", "video"):
        for codec in _codecs.CODECS[kind]:
            if _codecs.is_rtx(codec):
                continue
            codec.rtcpFeedback[:] = [f for f in codec.rtcpFeedback if f != TRANSPORT_CC_FEEDBACK]
            if transport_cc:
                codec.rtcpFeedback.append(TRANSPORT_CC_FEEDBACK)


_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? (\S+)", re.M)


@dataclass(slots=True)
class ExtensionIds:
    """The header-extension ids one peer connection's packets carry, by meaning.

    The SFU's own offers use the fixed ids above, but a participant that offers first
    numbers extensions its own way (Chromium puts the audio level at 1 and mid at 4), and
    the SFU's later offers keep those numbers. The ingress path reads each extension at
    the id negotiated for its peer connection; 0 means not negotiated (id 0 is never an
    element, RFC 8285).
    """

    mid: int = EXT_MID
    audio_level: int = EXT_AUDIO_LEVEL
    transport_cc: int = EXT_TRANSPORT_CC
    rtp_stream_id: int = EXT_RTP_STREAM_ID
    repaired_rtp_stream_id: int = EXT_REPAIRED_RTP_STREAM_ID

    def learn(self, sdp: str) -> None:
        """Take the ids of a remote description (an offer sets them, an answer echoes
        ours); an extension it does not list is not negotiated. Within a BUNDLE group an
        id means one extension, so the first ``a=extmap`` of each URI is enough."""
        found: dict[str, int] = {}
        for match in _EXTMAP.finditer(sdp):
            ext_id = int(match.group(1))
            if 1 <= ext_id <= 255:
                found.setdefault(match.group(2), ext_id)
        self.mid = found.get(URI_MID, 0)
        self.audio_level = found.get(URI_AUDIO_LEVEL, 0)
        self.transport_cc = found.get(URI_TRANSPORT_CC, 0)
        self.rtp_stream_id = found.get(URI_RTP_STREAM_ID, 0)
        self.repaired_rtp_stream_id = found.get(URI_REPAIRED_RTP_STREAM_ID, 0)

    def rids(self, extensions: dict[int, bytes]) -> dict[int, bytes]:
        """The rid elements of ``extensions`` (id -> value as negotiated) under the SFU's
        fixed ids, as ``ReceiverAdapter`` reads them."""
        out: dict[int, bytes] = {}
        rid = extensions.get(self.rtp_stream_id) if self.rtp_stream_id else None
        if rid is not None:
            out[EXT_RTP_STREAM_ID] = rid
        repaired = (
            extensions.get(self.repaired_rtp_stream_id) if self.repaired_rtp_stream_id else None
        )
        if repaired is not None:
            out[EXT_REPAIRED_RTP_STREAM_ID] = repaired
        return out


_ONE_BYTE: Final = 0xBEDE


def _extension_block(data: bytes) -> tuple[int, int, int] | None:
    # (profile, start, end) of the extension elements, or None without a valid block.
    size = len(data)
    if size < 12 or not data[0] & 0x10:
        return None
    pos = 12 + 4 * (data[0] & 0x0F)
    if size < pos + 4:
        return None
    profile = (data[pos] << 8) | data[pos + 1]
    end = pos + 4 + 4 * ((data[pos + 2] << 8) | data[pos + 3])
    if end > size:
        return None
    return profile, pos + 4, end


def header_extensions(data: bytes) -> dict[int, bytes]:
    """The header extensions of the RTP packet ``data`` (its whole bytes): id -> value.

    Reads the one-byte (``0xBEDE``) and two-byte (``0x100x``) forms of RFC 8285. Returns
    {} for a packet without extensions and for junk (a block or an element running past
    the packet, another profile); never raises.
    """
    block = _extension_block(data)
    if block is None:
        return {}
    profile, pos, end = block
    out: dict[int, bytes] = {}
    if profile == _ONE_BYTE:
        while pos < end:
            head = data[pos]
            if head == 0:  # padding
                pos += 1
                continue
            ext_id = head >> 4
            if ext_id == 15:  # reserved: stop here (RFC 8285 4.2)
                break
            length = (head & 0x0F) + 1
            if pos + 1 + length > end:
                return {}
            out[ext_id] = data[pos + 1 : pos + 1 + length]
            pos += 1 + length
    elif profile >> 4 == 0x100:
        while pos < end:
            ext_id = data[pos]
            if ext_id == 0:  # padding
                pos += 1
                continue
            if pos + 2 > end:
                return {}
            length = data[pos + 1]
            if pos + 2 + length > end:
                return {}
            out[ext_id] = data[pos + 2 : pos + 2 + length]
            pos += 2 + length
    else:
        return {}
    return out


def _find_extension(data: bytes, ext_id: int) -> tuple[int, int] | None:
    # (start, length) of the value of element ``ext_id``, or None; one walk, no allocation.
    if len(data) < 16 or not data[0] & 0x10:
        return None
    block = _extension_block(data)
    if block is None:
        return None
    profile, pos, end = block
    if profile == _ONE_BYTE:
        while pos < end:
            head = data[pos]
            if head == 0:
                pos += 1
                continue
            if head >> 4 == 15:
                return None
            length = (head & 0x0F) + 1
            if head >> 4 == ext_id:
                return (pos + 1, length) if pos + 1 + length <= end else None
            pos += 1 + length
    elif profile >> 4 == 0x100:
        while pos < end:
            if data[pos] == 0:
                pos += 1
                continue
            if pos + 2 > end:
                return None
            length = data[pos + 1]
            if data[pos] == ext_id:
                return (pos + 2, length) if pos + 2 + length <= end else None
            pos += 2 + length
    return None


def transport_sequence(data: bytes, ext_id: int) -> int | None:
    """The transport-wide sequence number in ``data`` under ``ext_id``, or None.

    The per-packet path of bandwidth estimation: walks the extension block for one id
    without building anything; None when absent or malformed; never raises.
    """
    found = _find_extension(data, ext_id)
    if found is None or found[1] != 2:
        return None
    start = found[0]
    return (data[start] << 8) | data[start + 1]


def audio_level(data: bytes, ext_id: int = EXT_AUDIO_LEVEL) -> int | None:
    """The RFC 6464 audio level of the RTP packet ``data`` under ``ext_id``, or None.

    The level is in -dBov: 0 is the loudest, 127 digital silence; the voice-activity bit
    is not returned (senders differ in how they set it). None when the element is absent
    or not exactly one byte long (RFC 6464 sect. 3); never raises. One walk of the
    extension block, so it can run on every audio packet forwarded.
    """
    found = _find_extension(data, ext_id)
    if found is None or found[1] != 1:
        return None
    return data[found[0]] & 0x7F
