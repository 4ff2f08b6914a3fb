"""Asking for the dominant speaker and network quality at join, and the messages that follow."""

from __future__ import annotations

import json

import pytest

from edge_sfu.signaling import protocol as p

JOIN = {"type": "join", "version": 1, "token": "t"}


def parse(obj: object) -> p.ClientMessage:
    return p.parse_client_message(json.dumps(obj))


def test_join_asks_for_nothing_by_default() -> None:
    join = parse(JOIN)
    assert isinstance(join, p.Join)
    assert join.dominant_speaker is False and join.network_quality is None


def test_join_asks_for_speaker_and_quality() -> None:
    join = parse(
        {
            **JOIN,
            "dominant_speaker": True,
            "network_quality": {"local": "detailed", "remote": "moderate"},
        }
    )
    assert isinstance(join, p.Join)
    assert join.dominant_speaker is True and join.network_quality == (3, 2)
    # twilio-video.js's defaults for a side not given: local minimal, remote none
    assert parse({**JOIN, "network_quality": {}}).network_quality == (1, 0)  # type: ignore[union-attr]
    assert parse({**JOIN, "network_quality": {"remote": "none"}}).network_quality == (1, 0)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("network_quality", {"local": "verbose"}, "network_quality.local must be one of none"),
        ("network_quality", {"remote": 3}, "network_quality.remote must be one of"),
        ("network_quality", {"local": "minimal", "other": "x"}, "network_quality must be"),
        ("network_quality", "detailed", "network_quality must be"),
        ("network_quality", True, "network_quality must be"),
        ("dominant_speaker", "yes", "dominant_speaker must be true or false"),
    ],
)
def test_bad_requests_are_refused_clearly(field: str, value: object, says: str) -> None:
    with pytest.raises(p.ProtocolError) as info:
        parse({**JOIN, field: value})
    assert info.value.code == p.INVALID_CLIENT_MESSAGE
    assert says in info.value.message


def test_messages() -> None:
    sid = "PA" + "1" * 32
    assert p.dominant_speaker_message(sid) == {"type": "dominant-speaker", "participant_sid": sid}
    assert p.dominant_speaker_message(None)["participant_sid"] is None
    message = p.network_quality_message(sid, {"level": 4, "send": 4, "recv": 5})
    assert message == {
        "type": "network-quality",
        "participant_sid": sid,
        "level": 4,
        "send": 4,
        "recv": 5,
    }
    assert {p.MSG_DOMINANT_SPEAKER, p.MSG_NETWORK_QUALITY} <= p.SERVER_MESSAGE_TYPES
