"""Bandwidth profiles, track priorities and switch requests on the wire: parsing and refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge_sfu.media.allocator import VideoBandwidthProfile
from edge_sfu.signaling import protocol as p

MT = "MT" + "a" * 32


def parse(obj: dict[str, Any]) -> p.ClientMessage:
    return p.parse_client_message(json.dumps(obj))


def join(profile: object) -> p.ClientMessage:
    return parse({"type": "join", "version": 1, "token": "t", "bandwidth_profile": profile})


def test_join_takes_a_full_bandwidth_profile() -> None:
    video = {
        "mode": "presentation",
        "max_subscription_bitrate": 1_200_000,
        "dominant_speaker_priority": "high",
        "track_switch_off_mode": "detected",
        "client_track_switch_off_control": "manual",
        "content_preferences_mode": "manual",
    }
    message = join({"video": video})
    assert isinstance(message, p.Join)
    assert message.bandwidth_profile == VideoBandwidthProfile(
        mode="presentation",
        max_subscription_bitrate=1_200_000,
        dominant_speaker_priority="high",
        track_switch_off_mode="detected",
        client_track_switch_off_control="manual",
        content_preferences_mode="manual",
    )


def test_missing_parts_are_the_defaults() -> None:
    no_profile = parse({"type": "join", "version": 1, "token": "t"})
    assert isinstance(no_profile, p.Join) and no_profile.bandwidth_profile is None
    for profile in ({}, {"video": None}, {"video": {}}, {"video": {"mode": None}}):
        message = join(profile)
        assert isinstance(message, p.Join)
        assert message.bandwidth_profile == VideoBandwidthProfile()


@pytest.mark.parametrize(
    ("profile", "words"),
    [
        ("grid", "must be an object"),
        ([], "must be an object"),
        ({"audio": {}}, "unknown field 'audio'"),
        ({"video": "grid"}, "video must be an object"),
        ({"video": {"mode": "theatre"}}, "mode must be one of"),
        ({"video": {"mode": 1}}, "mode must be one of"),
        ({"video": {"mode": "GRID"}}, "mode must be one of"),
        ({"video": {"maxTracks": 3}}, "unknown field 'maxTracks'"),
        ({"video": {"max_subscription_bitrate": "1M"}}, "max_subscription_bitrate"),
        ({"video": {"max_subscription_bitrate": 0}}, "max_subscription_bitrate"),
        ({"video": {"max_subscription_bitrate": -1}}, "max_subscription_bitrate"),
        ({"video": {"max_subscription_bitrate": True}}, "max_subscription_bitrate"),
        ({"video": {"max_subscription_bitrate": 1.5e6}}, "max_subscription_bitrate"),
        ({"video": {"max_subscription_bitrate": 10**12}}, "max_subscription_bitrate"),
        ({"video": {"dominant_speaker_priority": "urgent"}}, "dominant_speaker_priority"),
        ({"video": {"track_switch_off_mode": False}}, "track_switch_off_mode"),
        ({"video": {"client_track_switch_off_control": "disabled"}}, "client_track_switch"),
        ({"video": {"content_preferences_mode": ["auto"]}}, "content_preferences_mode"),
    ],
)
def test_bad_profiles_are_refused_with_a_clear_message(profile: object, words: str) -> None:
    with pytest.raises(p.ProtocolError) as caught:
        join(profile)
    assert caught.value.code == p.BANDWIDTH_PROFILE_INVALID == 53208
    assert words in caught.value.message


def test_publish_priority_on_audio_and_video_only() -> None:
    message = parse(
        {
            "type": "publish",
            "tracks": [
                {"client_id": "cam", "kind": "video", "priority": "high"},
                {"client_id": "mic", "kind": "audio"},
            ],
        }
    )
    assert isinstance(message, p.Publish)
    assert [t.priority for t in message.tracks] == ["high", "standard"]
    for bad in ("HIGH", 2, True, ""):
        with pytest.raises(p.ProtocolError, match="priority must be one of"):
            parse(
                {
                    "type": "publish",
                    "tracks": [{"client_id": "c", "kind": "video", "priority": bad}],
                }
            )
    with pytest.raises(p.ProtocolError, match="audio and video tracks only"):
        parse(
            {"type": "publish", "tracks": [{"client_id": "d", "kind": "data", "priority": "low"}]}
        )


def test_set_priority_and_publish_priority() -> None:
    message = parse({"type": "set-priority", "track_sid": MT, "priority": "low"})
    assert message == p.SetPriority(MT, "low")
    assert parse({"type": "set-priority", "track_sid": MT, "priority": None}) == p.SetPriority(
        MT, None
    )
    with pytest.raises(p.ProtocolError, match="required"):
        parse({"type": "set-priority", "track_sid": MT})
    with pytest.raises(p.ProtocolError, match="must be one of"):
        parse({"type": "set-priority", "track_sid": MT, "priority": "max"})
    with pytest.raises(p.ProtocolError, match="track SID"):
        parse({"type": "set-priority", "track_sid": "PA" + "a" * 32, "priority": "low"})
    publish = parse({"type": "set-publish-priority", "track_sid": MT, "priority": "high"})
    assert publish == p.SetPublishPriority(MT, "high")
    with pytest.raises(p.ProtocolError, match="must be one of"):
        parse({"type": "set-publish-priority", "track_sid": MT, "priority": None})
    with pytest.raises(p.ProtocolError, match="unknown field"):
        parse({"type": "set-priority", "track_sid": MT, "priority": "low", "x": 1})


def test_set_switched_off() -> None:
    message = parse({"type": "set-switched-off", "track_sid": MT, "switched_off": True})
    assert message == p.SetSwitchedOff(MT, True)
    for bad in (None, "yes", 1):
        with pytest.raises(p.ProtocolError, match="true or false"):
            parse({"type": "set-switched-off", "track_sid": MT, "switched_off": bad})


def test_switch_and_priority_messages_from_the_server() -> None:
    pa = "PA" + "b" * 32
    assert p.track_switched_off_message(pa, MT, "network-congestion") == {
        "type": "track-switched-off",
        "participant_sid": pa,
        "track_sid": MT,
        "reason": "network-congestion",
    }
    assert p.track_switched_on_message(pa, MT) == {
        "type": "track-switched-on",
        "participant_sid": pa,
        "track_sid": MT,
    }
    assert p.track_priority_changed_message(pa, MT, "high")["priority"] == "high"
    assert {
        p.MSG_TRACK_SWITCHED_OFF,
        p.MSG_TRACK_SWITCHED_ON,
        p.MSG_TRACK_PRIORITY_CHANGED,
    } <= p.SERVER_MESSAGE_TYPES


def test_sending_layers() -> None:
    message = parse({"type": "sending-layers", "track_sid": MT, "rids": ["q"]})
    assert message == p.SendingLayers(MT, ("q",))
    assert parse({"type": "sending-layers", "track_sid": MT, "rids": []}) == p.SendingLayers(MT, ())
    for bad, words in (
        ("q", "list of at most 3"),
        (["q", "h", "f", "x"], "list of at most 3"),
        ([1], "RFC 8851"),
        (["a b"], "RFC 8851"),
        (["x" * 17], "RFC 8851"),
        (["q", "q"], "repeated"),
        (None, "list of at most 3"),
    ):
        with pytest.raises(p.ProtocolError, match=words):
            parse({"type": "sending-layers", "track_sid": MT, "rids": bad})
    with pytest.raises(p.ProtocolError, match="track SID"):
        parse({"type": "sending-layers", "track_sid": "MT1", "rids": []})
