"""Header extensions: the seam's parser against aiortc's serializer, and junk."""

from __future__ import annotations

import struct

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket
from hypothesis import given
from hypothesis import strategies as st

from edge_sfu.media import seam


def _map(ids: dict[str, int]) -> HeaderExtensionsMap:
    uris = {
        "mid": "urn:ietf:params:rtp-hdrext:sdes:mid",
        "rid": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "rrid": "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "tcc": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "level": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    }
    mapping = HeaderExtensionsMap()
    mapping.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=i, uri=uris[name]) for name, i in ids.items()
            ]
        )
    )
    return mapping


def _packet(mapping: HeaderExtensionsMap, **values: object) -> bytes:
    packet = RtpPacket(payload_type=96, sequence_number=7, timestamp=9, ssrc=1234)
    packet.extensions = HeaderExtensions(**values)  # type: ignore[arg-type]
    packet.payload = b"payload"
    return packet.serialize(mapping)


def test_one_byte_form_as_aiortc_writes_it() -> None:
    ids = {
        "mid": seam.EXT_MID,
        "rid": seam.EXT_RTP_STREAM_ID,
        "tcc": seam.EXT_TRANSPORT_CC,
    }
    data = _packet(_map(ids), mid="1", rtp_stream_id="h", transport_sequence_number=0xABCD)
    assert seam.header_extensions(data) == {
        seam.EXT_MID: b"1",
        seam.EXT_RTP_STREAM_ID: b"h",
        seam.EXT_TRANSPORT_CC: b"\xab\xcd",
    }
    assert seam.transport_sequence(data, seam.EXT_TRANSPORT_CC) == 0xABCD
    assert seam.transport_sequence(data, 12) is None


def test_two_byte_form() -> None:
    # an id above 14 forces the two-byte form (RFC 8285 4.3)
    data = _packet(
        _map({"rrid": 20, "tcc": 30}), repaired_rtp_stream_id="m", transport_sequence_number=5
    )
    assert data[12:14] == b"\x10\x00"
    assert seam.header_extensions(data) == {20: b"m", 30: b"\x00\x05"}
    assert seam.transport_sequence(data, 30) == 5
    assert seam.transport_sequence(data, 20) is None  # not two bytes long


def test_csrcs_padding_and_reserved_id() -> None:
    header = struct.pack("!BBHII", 0x92, 96, 1, 2, 3) + struct.pack("!II", 10, 11)
    # padding byte, id 4 len 2, id 15 (stop), then what would be id 5
    block = b"\x00\x41\x00\x07\xf0\x50"
    data = header + b"\xbe\xde\x00\x02" + block + b"\x00\x00" + b"x"
    assert seam.header_extensions(data) == {4: b"\x00\x07"}
    assert seam.transport_sequence(data, 4) == 7
    assert seam.transport_sequence(data, 5) is None


def test_junk_gives_nothing() -> None:
    header = struct.pack("!BBHII", 0x90, 96, 1, 2, 3)
    for junk in (
        b"",
        header[:11],
        header,  # X bit but no block
        header + b"\xbe\xde\x00\x05\x10\x00",  # block longer than the packet
        header + b"\xbe\xde\x00\x01\x1f\x00\x00\x00",  # element longer than the block
        header + b"\x12\x34\x00\x01\x10\x00\x00\x00",  # unknown profile
        struct.pack("!BBHII", 0x80, 96, 1, 2, 3) + b"x",  # no X bit
    ):
        assert seam.header_extensions(junk) == {}
        assert seam.transport_sequence(junk, 1) is None


@given(st.binary(max_size=80), st.integers(min_value=0, max_value=255))
def test_never_raises_and_agrees_with_itself(data: bytes, ext_id: int) -> None:
    extensions = seam.header_extensions(data)
    seq = seam.transport_sequence(data, ext_id)
    if seq is not None:
        assert 0 <= seq <= 0xFFFF
        assert extensions.get(ext_id) == seq.to_bytes(2, "big")
    level = seam.audio_level(data, ext_id)
    if level is not None:
        assert 0 <= level <= 127


def test_audio_level_as_aiortc_writes_it() -> None:
    mapping = _map({"mid": seam.EXT_MID, "level": seam.EXT_AUDIO_LEVEL, "tcc": 4})
    for vad, level in ((True, 0), (False, 37), (True, 127)):
        data = _packet(mapping, mid="0", audio_level=(vad, level), transport_sequence_number=1)
        assert seam.audio_level(data) == level  # the voice-activity bit is not the level
        assert seam.transport_sequence(data, 4) == 1
    assert seam.audio_level(_packet(mapping, mid="0")) is None  # missing
    two_byte = _packet(_map({"level": 20}), audio_level=(False, 42))
    assert seam.audio_level(two_byte, 20) == 42


def test_audio_level_of_the_wrong_length_is_ignored() -> None:
    header = struct.pack("!BBHII", 0x90, 111, 1, 2, 3)
    # id 2 with two bytes (length field 1): not an RFC 6464 element
    data = header + b"\xbe\xde\x00\x01" + b"\x21\x85\x00\x00" + b"opus"
    assert seam.audio_level(data) is None
    assert seam.audio_level(header + b"\xbe\xde\x00\x05\x20\x05") is None  # truncated


@given(
    st.binary(min_size=12, max_size=12),
    st.lists(st.tuples(st.integers(1, 14), st.binary(min_size=1, max_size=16)), max_size=6),
    st.binary(max_size=40),
)
def test_well_formed_one_byte_blocks_round_trip(
    fixed: bytes, elements: list[tuple[int, bytes]], tail: bytes
) -> None:
    body = b"".join(bytes([(i << 4) | (len(v) - 1)]) + v for i, v in elements)
    body += b"\x00" * (-len(body) % 4)
    data = bytes([0x90]) + fixed[1:] + b"\xbe\xde" + struct.pack("!H", len(body) // 4) + body + tail
    assert seam.header_extensions(data) == dict(elements)


CHROMIUM_OFFER = """v=0\r
m=audio 9 UDP/TLS/RTP/SAVPF 111\r
a=mid:0\r
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
m=video 9 UDP/TLS/RTP/SAVPF 96\r
a=mid:1\r
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r
a=extmap:10/sendonly urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r
"""


def test_extension_ids_follow_the_remote_description() -> None:
    ids = seam.ExtensionIds()
    # before any description: the SFU's own ids
    assert (ids.mid, ids.audio_level, ids.transport_cc) == (
        seam.EXT_MID,
        seam.EXT_AUDIO_LEVEL,
        seam.EXT_TRANSPORT_CC,
    )
    ids.learn(CHROMIUM_OFFER)
    assert (ids.audio_level, ids.transport_cc, ids.mid) == (1, 3, 4)
    assert (ids.rtp_stream_id, ids.repaired_rtp_stream_id) == (10, 11)
    # a packet numbered as the offer says: each value read at its negotiated id
    data = _packet(
        _map({"level": 1, "tcc": 3, "mid": 4, "rid": 10}),
        audio_level=(True, 33),
        transport_sequence_number=0x1234,
        mid="0",
        rtp_stream_id="h",
    )
    assert seam.audio_level(data, ids.audio_level) == 33
    assert seam.transport_sequence(data, ids.transport_cc) == 0x1234
    # the SFU's fixed ids point at other extensions in this numbering
    assert seam.audio_level(data, seam.EXT_AUDIO_LEVEL) is None
    assert ids.rids(seam.header_extensions(data)) == {seam.EXT_RTP_STREAM_ID: b"h"}


def test_extensions_a_description_leaves_out_are_not_read() -> None:
    ids = seam.ExtensionIds()
    ids.learn("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=extmap:0 bogus\r\na=extmap:x y\r\n")
    assert (ids.mid, ids.audio_level, ids.transport_cc, ids.rtp_stream_id) == (0, 0, 0, 0)
    assert ids.rids({seam.EXT_RTP_STREAM_ID: b"h", 0: b"x"}) == {}
