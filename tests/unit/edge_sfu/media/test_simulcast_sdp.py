"""The simulcast lines the seam writes into SFU offers and reads from answers (RFC 8853)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_sfu.media import seam

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 2",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:0",
        "a=recvonly",
        "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
        "a=mid:1",
        "a=recvonly",
        "a=rtpmap:97 VP8/90000",
        "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
        "a=mid:2",
        "a=sendonly",
        "",
    ]
)


def _section(sdp: str, mid: str) -> list[str]:
    for section in sdp.split("\r\nm=")[1:]:
        lines = section.split("\r\n")
        if f"a=mid:{mid}" in lines:
            return lines
    raise AssertionError(mid)


def test_rids_go_into_their_m_section_only() -> None:
    out = seam.offer_simulcast(OFFER, {"1": ["q", "h", "f"]})
    video = _section(out, "1")
    assert video[-4:] == ["a=rid:q recv", "a=rid:h recv", "a=rid:f recv", "a=simulcast:recv q;h;f"]
    assert not any("rid" in line for line in _section(out, "0") + _section(out, "2"))
    assert out.endswith("\r\n") and "\n\n" not in out.replace("\r\n", "\n")
    assert (
        out.replace("".join(f"a=rid:{r} recv\r\n" for r in "qhf"), "").replace(
            "a=simulcast:recv q;h;f\r\n", ""
        )
        == OFFER
    )


def test_paused_rids_are_marked() -> None:
    out = seam.offer_simulcast(OFFER, {"1": ["h", "f"], "2": ["a", "b"]}, {"1": {"f"}})
    assert "a=simulcast:recv h;~f" in _section(out, "1")
    assert "a=simulcast:recv a;b" in _section(out, "2")
    assert "a=rid:f recv" in _section(out, "1")  # a paused rid is still offered


def test_nothing_to_add_and_bad_rids() -> None:
    assert seam.offer_simulcast(OFFER, {}) == OFFER
    assert seam.offer_simulcast(OFFER, {"9": ["q", "f"]}) == OFFER  # no such mid
    for bad in (["q", "q"], ["a b"], [""], ["x" * 17], ["é"], ["~f"]):
        with pytest.raises(ValueError):
            seam.offer_simulcast(OFFER, {"1": bad})


def test_answered_rids() -> None:
    answer = "\r\n".join(
        [
            "v=0",
            "m=video 9 UDP/TLS/RTP/SAVPF 97",
            "a=mid:1",
            "a=sendonly",
            "a=rid:q send",
            "a=rid:h send",
            "a=rid:f send",
            "a=simulcast:send q;~h;f,x",
            "m=video 9 UDP/TLS/RTP/SAVPF 97",
            "a=mid:2",
            "a=simulcast:recv a;b",
            "m=video 9 UDP/TLS/RTP/SAVPF 97",
            "a=mid:3",
            "a=simulcast:send a;b%;a",
            "m=video 9 UDP/TLS/RTP/SAVPF 97",
            "a=mid:4",
            "",
        ]
    )
    assert seam.answered_rids(answer) == {"1": ["q", "f"], "3": ["a"]}
    assert seam.answered_rids(answer.replace("\r\n", "\n")) == {"1": ["q", "f"], "3": ["a"]}


@given(st.text(max_size=300))
def test_answer_parsing_never_raises(text: str) -> None:
    for rids in seam.answered_rids("v=0\r\nm=video 9 x 97\r\na=mid:1\r\n" + text).values():
        assert all(seam.RID.match(r) for r in rids)


#: A video m-section as twilio-video.js munges it for VP8 simulcast (SIM group, lowest
#: layer first, an RTX SSRC per layer).
MUNGED = "\r\n".join(
    [
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "a=mid:1",
        "a=sendrecv",
        "a=msid:- cam",
        "a=ssrc-group:FID 11 21",
        "a=ssrc-group:FID 12 22",
        "a=ssrc-group:FID 13 23",
        "a=ssrc:11 cname:c",
        "a=ssrc:11 msid:- cam",
        "a=ssrc:21 cname:c",
        "a=ssrc:12 cname:c",
        "a=ssrc:22 cname:c",
        "a=ssrc:13 cname:c",
        "a=ssrc:23 cname:c",
        "a=ssrc-group:SIM 11 12 13",
        "a=x-google-flag:conference",
    ]
)


def test_ssrc_simulcast() -> None:
    head = "v=0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
    found = seam.ssrc_simulcast(head + MUNGED + "\r\n")
    assert found == {"1": seam.SsrcSimulcast((11, 12, 13), {21: 11, 22: 12, 23: 13})}
    # one SSRC, a repeated one, two SIM groups, rid simulcast: not SSRC simulcast
    assert seam.ssrc_simulcast(MUNGED.replace("SIM 11 12 13", "SIM 11")) == {}
    assert seam.ssrc_simulcast(MUNGED.replace("SIM 11 12 13", "SIM 11 12 11")) == {}
    assert seam.ssrc_simulcast(MUNGED + "\r\na=ssrc-group:SIM 14 15") == {}
    assert seam.ssrc_simulcast(MUNGED + "\r\na=simulcast:send h;f") == {}
    assert seam.ssrc_simulcast(MUNGED.replace("SIM 11 12 13", "SIM 11 99999999999")) == {}


@given(st.text(alphabet="am=-:0123456789 SIMFID\r\nssrcgroup", max_size=300))
def test_ssrc_group_parsing_never_raises(text: str) -> None:
    seam.ssrc_simulcast("v=0\r\n" + text)
