"""twilio-video.js media-signaling messages: what the SDK sends is parsed, anything else is
refused with a reason, and what the server sends has the shapes the SDK reads."""

from __future__ import annotations

import json

import pytest

from edge_sfu.media.quality import LinkSample, network_quality
from edge_sfu.signaling import protocol as p
from edge_sfu.signaling.twilio import msp


def test_the_sdks_own_messages_parse() -> None:
    assert msp.parse("track_priority", '{"type":"ready"}') == msp.Ready()
    # as networkqualitysignaling.js sends its inputs
    inputs = {
        "type": "network_quality",
        "ice": {"recv": 0, "send": 0},
        "send": {"bitrate": 0},
        "reportLevel": 3,
        "remoteReportLevel": 2,
    }
    assert msp.parse("network_quality", json.dumps(inputs)) == msp.QualityRequest(3, 2)
    # the browser's own estimate of its uplink, when it has one; a statistic it cannot use
    # is left out rather than refused
    inputs["ice"] = {"recv": 0, "send": 0, "availableSend": 812345.6, "rtt": 0.02}
    assert msp.parse("network_quality", json.dumps(inputs)) == msp.QualityRequest(3, 2, 812345)
    for bad in (-1, "fast", True, 1e12, None):
        inputs["ice"] = {"availableSend": bad}
        assert msp.parse("network_quality", json.dumps(inputs)) == msp.QualityRequest(3, 2)
    inputs["ice"] = "none"
    assert msp.parse("network_quality", json.dumps(inputs)) == msp.QualityRequest(3, 2)
    message = '{"type":"track_priority","track":"MT1","subscribe":"high"}'
    assert msp.parse("track_priority", message) == msp.TrackPriority("MT1", "high")
    message = '{"type":"track_priority","track":"MT1","subscribe":null}'
    assert msp.parse("track_priority", message) == msp.TrackPriority("MT1", None)
    hints = {
        "type": "render_hints",
        "subscriber": {
            "id": 7,
            "hints": [
                {"track": "MT1", "enabled": False},
                {"track": "MT2", "render_dimensions": {"width": 320, "height": 180}},
                {"track": "MT3", "enabled": True, "render_dimensions": {"width": 0, "height": 0}},
            ],
        },
    }
    assert msp.parse("render_hints", json.dumps(hints).encode()) == msp.RenderHints(
        7,
        (
            msp.RenderHint("MT1", False),
            msp.RenderHint("MT2", None, (320, 180)),
            msp.RenderHint("MT3", True, (0, 0)),
        ),
    )


@pytest.mark.parametrize(
    ("channel", "raw", "why"),
    [
        ("render_hints", "not json", "not JSON"),
        ("render_hints", b"\xff\xfe", "not JSON"),
        ("render_hints", "[1, 2]", "JSON object"),
        ("render_hints", "x" * (msp.MAX_MESSAGE_BYTES + 1), "longer than"),
        ("render_hints", '{"type": "track_priority", "track": "MT1"}', "unknown message type"),
        ("active_speaker", '{"type": "active_speaker", "participant": "PA1"}', "unknown"),
        ("track_switch_off", '{"type": "track_switch_off", "off": ["MT1"]}', "unknown"),
        ("network_quality", '{"type": 5}', "unknown"),
        ("network_quality", '{"type": "network_quality", "reportLevel": 9}', "verbosity"),
        ("network_quality", '{"type": "network_quality", "reportLevel": true}', "verbosity"),
        ("network_quality", '{"type": "network_quality", "remoteReportLevel": "x"}', "verbosity"),
        (
            "track_priority",
            '{"type": "track_priority", "track": "MT1", "subscribe": "max"}',
            "one of",
        ),
        ("track_priority", '{"type": "track_priority", "track": 5, "subscribe": "low"}', "SID"),
        ("track_priority", '{"type": "track_priority", "subscribe": "low"}', "SID"),
        ("render_hints", '{"type": "render_hints"}', "subscriber"),
        ("render_hints", '{"type": "render_hints", "subscriber": {"hints": []}}', "id"),
        ("render_hints", '{"type": "render_hints", "subscriber": {"id": -1, "hints": []}}', "id"),
        ("render_hints", '{"type": "render_hints", "subscriber": {"id": 1, "hints": {}}}', "list"),
        (
            "render_hints",
            '{"type": "render_hints", "subscriber": {"id": 1, "hints": [5]}}',
            "object",
        ),
    ],
)
def test_bad_messages_are_refused_with_a_reason(channel: str, raw: str | bytes, why: str) -> None:
    with pytest.raises(msp.MspError, match=why):
        msp.parse(channel, raw)


def test_too_many_hints_are_refused() -> None:
    hints = [{"track": f"MT{i}", "enabled": True} for i in range(msp.MAX_HINTS + 1)]
    raw = json.dumps({"type": "render_hints", "subscriber": {"id": 1, "hints": hints}})
    with pytest.raises(msp.MspError, match="at most"):
        msp.parse("render_hints", raw)


@pytest.mark.parametrize(
    "hint",
    [
        {"track": "MT1"},
        {"track": "MT1", "enabled": "yes"},
        {"track": "MT1", "render_dimensions": [1, 2]},
        {"track": "MT1", "render_dimensions": {"width": -1, "height": 10}},
        {"track": "MT1", "render_dimensions": {"width": 10**9, "height": 10}},
        {"track": "MT1", "render_dimensions": {"width": "10", "height": 10}},
        {"track": "MT1", "render_dimensions": {"width": True, "height": 10}},
        {"track": "MT1", "render_dimensions": {"width": 10}},
    ],
)
def test_a_bad_hint_is_answered_alone(hint: dict[str, object]) -> None:
    # the other hints of the message still count
    good = {"track": "MT2", "enabled": True}
    raw = json.dumps({"type": "render_hints", "subscriber": {"id": 3, "hints": [hint, good]}})
    parsed = msp.parse("render_hints", raw)
    assert isinstance(parsed, msp.RenderHints)
    assert parsed.hints[0].track == "MT1" and parsed.hints[0].error
    assert parsed.hints[1] == msp.RenderHint("MT2", True)


def test_requested_channels() -> None:
    dc = {"transports": [{"type": "data-channel"}]}
    asked = {
        "active_speaker": dc,
        "network_quality": dc,
        "publisher_hints": dc,
        "extension_transcriptions": dc,  # not served: left out
        "render_hints": {"transports": [{"type": "smoke-signals"}]},
        "track_priority": "junk",
    }
    assert msp.requested(asked) == {"active_speaker", "network_quality", "publisher_hints"}
    assert msp.requested(None) == frozenset()
    assert msp.requested([1]) == frozenset()
    assert msp.advertised(["active_speaker"]) == {
        "active_speaker": {"transport": {"type": "data-channel", "label": "active_speaker"}}
    }


def test_bandwidth_profile_in_the_sdks_names() -> None:
    raw = {
        "video": {
            "mode": "presentation",
            "active_speaker_priority": "high",
            "max_subscription_bandwidth": 1500000.0,
            "track_switch_off": "detected",
            "max_tracks": 5,  # deprecated in the SDK: not used
        }
    }
    profile = msp.bandwidth_profile(raw)
    assert profile is not None
    assert (profile.mode, profile.dominant_speaker_priority) == ("presentation", "high")
    assert profile.max_subscription_bitrate == 1_500_000
    assert profile.track_switch_off_mode == "detected"
    assert msp.bandwidth_profile(None) is None
    for bad in ({"video": {"mode": "theatre"}}, {"video": 3}, "x"):
        with pytest.raises(p.ProtocolError) as info:
            msp.bandwidth_profile(bad)
        assert info.value.code == p.BANDWIDTH_PROFILE_INVALID


def test_network_quality_answers_at_each_verbosity() -> None:
    good = network_quality({"video": LinkSample(400_000, 400_000, 2_000_000, 0.0, 0.05, 0.01)}, {})
    poor = network_quality({"video": LinkSample(400_000, 50_000, 60_000, 0.3, 0.9, 0.2)}, {})
    assert good.level == 5 and poor.level <= 2
    minimal = msp.network_quality_message(good, {"PA2": poor}, msp.QualityRequest(1, 0))
    assert minimal == {"type": "network_quality", "local": 5}
    moderate = msp.network_quality_message(good, {"PA2": poor}, msp.QualityRequest(2, 1))
    assert moderate["local"]["level"] == 5
    assert set(moderate["local"]["audio"]) == {"send", "recv"}
    assert moderate["remotes"] == [{"sid": "PA2", "level": poor.level}]
    detailed = msp.network_quality_message(good, {}, msp.QualityRequest(3, 3))
    stats = detailed["local"]["video"]["sendStats"]
    assert stats["bandwidth"]["available"] == 2_000_000
    assert stats["latency"]["rtt"] == 50.0 and stats["fractionLost"]["fractionLost"] == 0.0
    # nothing measured yet: no level, and the SDK asks again
    unknown = msp.network_quality_message(None, {}, msp.QualityRequest(1, 1))
    assert unknown == {"type": "network_quality", "local": None, "remotes": []}


def test_server_messages() -> None:
    assert msp.active_speaker_message("PA1") == {"type": "active_speaker", "participant": "PA1"}
    assert msp.switch_off_message(off=["MT1"]) == {
        "type": "track_switch_off",
        "off": ["MT1"],
        "on": [],
    }
    assert msp.render_hints_response(4, [("MT1", "OK")]) == {
        "type": "render_hints",
        "subscriber": {"id": 4, "hints": [{"track": "MT1", "result": "OK"}]},
    }
    error = msp.error_message("x" * 500)
    assert error["type"] == "error" and error["code"] == 53004 and len(error["message"]) == 200


def test_publisher_hints_both_ways() -> None:
    # what the SDK's PublisherHintsSignaling reads (message.publisher.id must be truthy)
    assert msp.publisher_hints_message(3, [("MT1", (True, False, False))]) == {
        "type": "publisher_hints",
        "publisher": {
            "id": 3,
            "hints": [
                {
                    "track": "MT1",
                    "encodings": [
                        {"layer_index": 0, "enabled": True},
                        {"layer_index": 1, "enabled": False},
                        {"layer_index": 2, "enabled": False},
                    ],
                }
            ],
        },
    }
    # what it answers (sendHintResponse) and sends after replaceTrack (sendTrackReplaced)
    answer = '{"type":"publisher_hints","id":3,"hints":[{"track":"MT1","result":"OK"}]}'
    assert msp.parse("publisher_hints", answer) == msp.HintResults(3, (("MT1", "OK"),))
    reset = '{"type":"client_reset","track":"MT1","id":4}'
    assert msp.parse("publisher_hints", reset) == msp.ClientReset("MT1")
    for bad in (
        '{"type":"publisher_hints","id":-1,"hints":[]}',
        '{"type":"publisher_hints","id":1,"hints":[{"track":"MT1","result":7}]}',
        '{"type":"publisher_hints","id":1,"hints":{}}',
        '{"type":"client_reset"}',
        '{"type":"render_hints","subscriber":{"id":1,"hints":[]}}',
    ):
        with pytest.raises(msp.MspError):
            msp.parse("publisher_hints", bad)
