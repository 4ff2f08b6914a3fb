"""What the WHIP/WHEP endpoints read in offers and trickle fragments before aiortc does."""

from __future__ import annotations

import pytest

from edge_sfu.signaling.whip.sdp import (
    MAX_FRAGMENT_LINES,
    FragmentError,
    parse_fragment,
    parse_offer,
)

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 2",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:0123456789abcdefghijklmn",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
        "a=mid:0",
        "a=sendonly",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:0 PCMU/8000",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "a=mid:1",
        "a=recvonly",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "m=video 0 UDP/TLS/RTP/SAVPF 98",
        "a=mid:2",
        "a=sendonly",
        "a=rtpmap:98 AV1/90000",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=mid:3",
        "",
    ]
)


def test_offer_lines_directions_codecs_and_credentials() -> None:
    offer = parse_offer(OFFER)
    assert (offer.ufrag, offer.pwd) == ("abcd", "0123456789abcdefghijklmn")
    audio, video, rejected = offer.media
    assert (audio.kind, audio.sends, audio.receives) == ("audio", True, False)
    assert audio.forwarded_codecs == {"OPUS"}
    assert (video.kind, video.sends, video.receives) == ("video", False, True)
    assert video.forwarded_codecs == {"VP8"}
    assert rejected.direction == "inactive" and not rejected.forwarded_codecs  # port 0, AV1


def test_offer_direction_defaults_to_the_session_then_sendrecv() -> None:
    no_direction = OFFER.replace("a=sendonly\r\n", "").replace("a=recvonly\r\n", "")
    assert {line.direction for line in parse_offer(no_direction).media[:2]} == {"sendrecv"}
    session = no_direction.replace("t=0 0\r\n", "t=0 0\r\na=recvonly\r\n")
    assert {line.direction for line in parse_offer(session).media[:2]} == {"recvonly"}


def test_fragment_candidates_credentials_and_end() -> None:
    fragment = parse_fragment(
        "a=ice-ufrag:abcd\r\na=ice-pwd:secret\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
        "a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\na=end-of-candidates\r\n"
    )
    assert fragment.candidates == ["candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host"]
    assert (fragment.ufrag, fragment.pwd, fragment.end_of_candidates) == ("abcd", "secret", True)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\r\n",
        "hello",
        "v=0\r\n",
        "a=candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\na=fingerprint:sha-256 AA",
        "a=candidate:\x00",
        "a=candidate:" + "1" * 2000,
        "a=end-of-candidates\r\n" * (MAX_FRAGMENT_LINES + 1),
    ],
)
def test_malformed_fragments_are_refused(body: str) -> None:
    with pytest.raises(FragmentError):
        parse_fragment(body)
