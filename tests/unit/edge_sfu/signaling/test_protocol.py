"""Protocol v1: every client message parsed strictly, every refusal with its code."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sfu.signaling import protocol as p

SID = "MT" + "ab" * 16


def parse(obj: object) -> p.ClientMessage:
    return p.parse_client_message(json.dumps(obj))


def refused(obj: object | str | bytes, code: int = p.INVALID_CLIENT_MESSAGE) -> p.ProtocolError:
    raw = obj if isinstance(obj, str | bytes) else json.dumps(obj)
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client_message(raw)
    assert info.value.code == code, info.value.message
    return info.value


def test_valid_messages_parse_to_dataclasses():
    assert parse({"type": "join", "version": 1, "token": "t", "room": "r"}) == p.Join(
        1, "t", None, "r"
    )
    assert parse({"type": "join", "version": 1, "reconnect_token": "x"}).reconnect_token == "x"
    answer = parse({"type": "answer", "negotiation": 3, "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"})
    assert isinstance(answer, p.Answer) and answer.negotiation == 3
    publish = parse(
        {
            "type": "publish",
            "ref": "r1",
            "tracks": [
                {"client_id": "cam", "kind": "video", "codec": "H264"},
                {"client_id": "mic", "kind": "audio", "name": "Mic 1", "enabled": False},
            ],
        }
    )
    assert publish == p.Publish(
        (
            p.TrackRequest("cam", "video", "cam", True, "H264"),
            p.TrackRequest("mic", "audio", "Mic 1", False, None),
        ),
        ref="r1",
    )
    assert parse({"type": "set-enabled", "track_sid": SID, "enabled": False}) == p.SetEnabled(
        SID, False
    )
    size = parse({"type": "set-render-size", "track_sid": SID, "width": 0, "height": 0})
    assert size == p.SetRenderSize(SID, 0, 0)
    assert parse({"type": "unpublish", "track_sid": SID}) == p.Unpublish(SID)
    assert parse({"type": "ping", "ref": 5}) == p.Ping(5)
    assert parse({"type": "pong"}) == p.Pong()
    assert parse({"type": "leave"}) == p.Leave()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "nope"}, 53004),
        ({"no": "type"}, 53004),
        ({"type": 5}, 53004),
        ({"type": "ping", "extra": 1}, 53004),
        ({"type": "ping", "ref": True}, 53004),
        ({"type": "ping", "ref": "x" * 65}, 53004),
        ({"type": "ping", "ref": 2**60}, 53004),
        ({"type": "join", "version": 2, "token": "t"}, 53004),
        ({"type": "join", "version": True, "token": "t"}, 53004),
        ({"type": "join", "version": 1, "token": ""}, 53004),
        ({"type": "join", "version": 1, "token": "x" * 8193}, 53004),
        ({"type": "join", "version": 1, "token": 5}, 53004),
        ({"type": "answer", "negotiation": 0, "sdp": "v=0"}, 53004),
        ({"type": "answer", "negotiation": 1.5, "sdp": "v=0"}, 53004),
        ({"type": "answer", "negotiation": 1, "sdp": "hello"}, 53403),
        ({"type": "answer", "negotiation": 1, "sdp": "v=0\r\n" + "a=x\r\n" * 7000}, 53403),
        ({"type": "answer", "negotiation": 1, "sdp": "v=0\r\nBAD LINE\r\n"}, 53403),
        (
            {
                "type": "answer",
                "negotiation": 1,
                "sdp": "v=0\r\n"
                + "".join(f"a=candidate:1 1 udp 1 192.0.2.9 {n} typ host\r\n" for n in range(65)),
            },
            53403,
        ),
        ({"type": "answer", "negotiation": 1, "sdp": "v=0\r\na=" + "x" * 5000}, 53403),
        ({"type": "publish", "tracks": []}, 53004),
        ({"type": "publish", "tracks": [{"client_id": "a", "kind": "video"}] * 2}, 53004),
        ({"type": "publish", "tracks": [{"client_id": "a b", "kind": "video"}]}, 53004),
        ({"type": "publish", "tracks": [{"client_id": "a", "kind": "smell"}]}, 53300),
        (
            {"type": "publish", "tracks": [{"client_id": "a", "kind": "data", "codec": "VP8"}]},
            53004,
        ),
        (
            {"type": "publish", "tracks": [{"client_id": "a", "kind": "audio", "ordered": False}]},
            53004,
        ),
        (
            {"type": "publish", "tracks": [{"client_id": "a", "kind": "data", "ordered": "no"}]},
            53004,
        ),
        (
            {
                "type": "publish",
                "tracks": [
                    {
                        "client_id": "a",
                        "kind": "data",
                        "max_retransmits": 1,
                        "max_packet_life_time": 100,
                    }
                ],
            },
            53004,
        ),
        (
            {
                "type": "publish",
                "tracks": [{"client_id": "a", "kind": "data", "max_retransmits": -1}],
            },
            53004,
        ),
        (
            {
                "type": "publish",
                "tracks": [{"client_id": "a", "kind": "data", "max_packet_life_time": 65536}],
            },
            53004,
        ),
        ({"type": "publish", "tracks": [{"client_id": "a", "kind": "video", "name": ""}]}, 53301),
        (
            {"type": "publish", "tracks": [{"client_id": "a", "kind": "video", "name": "x" * 129}]},
            53302,
        ),
        (
            {"type": "publish", "tracks": [{"client_id": "a", "kind": "video", "name": "a\nb"}]},
            53303,
        ),
        (
            {"type": "publish", "tracks": [{"client_id": "a", "kind": "audio", "codec": "H264"}]},
            53404,
        ),
        ({"type": "publish", "tracks": [{"client_id": "a", "kind": "video", "x": 1}]}, 53004),
        (
            {
                "type": "publish",
                "tracks": [{"client_id": f"c{i}", "kind": "video"} for i in range(17)],
            },
            53004,
        ),
        ({"type": "set-enabled", "track_sid": "MT123", "enabled": True}, 53004),
        ({"type": "set-enabled", "track_sid": SID, "enabled": "yes"}, 53004),
        ({"type": "set-render-size", "track_sid": SID, "width": 16385, "height": 1}, 53004),
    ],
)
def test_bad_messages_are_refused_with_a_code(message, code):
    error = refused(message, code)
    assert not error.fatal or message.get("type") == "join"


def test_data_track_requests():
    message = parse(
        {
            "type": "publish",
            "tracks": [
                {"client_id": "chat", "kind": "data"},
                {"client_id": "cursor", "kind": "data", "ordered": False, "max_retransmits": 0},
                {"client_id": "tele", "kind": "data", "max_packet_life_time": 500, "name": "t"},
            ],
        }
    )
    assert isinstance(message, p.Publish)
    chat, cursor, tele = message.tracks
    assert (chat.kind, chat.name, chat.ordered, chat.max_retransmits) == (
        "data",
        "chat",
        True,
        None,
    )
    assert (cursor.ordered, cursor.max_retransmits, cursor.max_packet_life_time) == (False, 0, None)
    assert (tele.name, tele.max_packet_life_time, tele.max_retransmits) == ("t", 500, None)


LAYERS = [
    {"rid": "h", "width": 320, "height": 240, "max_bitrate": 230400},
    {"rid": "f", "width": 640, "height": 480},
]


def test_simulcast_layers_of_a_video_track():
    message = parse(
        {
            "type": "publish",
            "tracks": [{"client_id": "cam", "kind": "video", "codec": "VP8", "layers": LAYERS}],
        }
    )
    assert isinstance(message, p.Publish)
    (cam,) = message.tracks
    assert cam.codec == "VP8"
    assert cam.layers == (
        p.LayerRequest("h", 320, 240, 230400),
        p.LayerRequest("f", 640, 480, None),
    )
    plain = parse({"type": "publish", "tracks": [{"client_id": "cam", "kind": "video"}]})
    assert isinstance(plain, p.Publish) and plain.tracks[0].layers == ()


@pytest.mark.parametrize(
    "layers",
    [
        [],  # a list of one or none is no simulcast
        LAYERS[:1],
        [
            *LAYERS,
            {"rid": "g", "width": 1280, "height": 720},
            {"rid": "i", "width": 1920, "height": 1080},
        ],
        "hf",
        [LAYERS[0], "f"],
        [LAYERS[1], LAYERS[0]],  # largest first
        [LAYERS[0], {**LAYERS[1], "width": 300}],  # not larger in both dimensions
        [LAYERS[0], {**LAYERS[0], "rid": "f"}],  # the same size twice
        [LAYERS[0], {**LAYERS[1], "rid": "h"}],  # rid repeated
        [LAYERS[0], {**LAYERS[1], "rid": "f f"}],
        [LAYERS[0], {**LAYERS[1], "rid": "~f"}],
        [LAYERS[0], {**LAYERS[1], "rid": "x" * 17}],
        [LAYERS[0], {**LAYERS[1], "rid": 7}],
        [LAYERS[0], {**LAYERS[1], "width": 0}],
        [LAYERS[0], {**LAYERS[1], "height": 16385}],
        [LAYERS[0], {**LAYERS[1], "width": 640.5}],
        [LAYERS[0], {**LAYERS[1], "height": True}],
        [LAYERS[0], {**LAYERS[1], "max_bitrate": 999}],
        [LAYERS[0], {**LAYERS[1], "max_bitrate": 10**12}],
        [LAYERS[0], {**LAYERS[1], "max_bitrate": "1e6"}],
        [LAYERS[0], {**LAYERS[1], "scale": 2}],
    ],
)
def test_bad_layers_are_refused(layers):
    refused({"type": "publish", "tracks": [{"client_id": "c", "kind": "video", "layers": layers}]})


@pytest.mark.parametrize("kind", ["audio", "data"])
def test_layers_are_for_video_only(kind):
    refused({"type": "publish", "tracks": [{"client_id": "c", "kind": kind, "layers": LAYERS}]})


def test_repeated_candidates_count_once():
    sdp = "v=0\r\n" + "a=candidate:1 1 udp 1 192.0.2.9 9 typ host\r\n" * 500
    message = parse({"type": "answer", "negotiation": 1, "sdp": sdp})
    assert isinstance(message, p.Answer)


def test_frames_that_are_not_messages():
    assert refused(b"\x00\x01").fatal  # binary
    assert refused("x" * (p.MAX_FRAME_BYTES + 1)).fatal  # oversize
    assert not refused("{not json").fatal
    assert not refused("[1]").fatal
    assert not refused("[" * 50000).fatal  # deep nesting: no RecursionError escapes
    assert refused({"type": "join", "version": 9}).fatal  # cannot talk to this client


def test_ref_is_kept_on_errors():
    assert refused({"type": "bogus", "ref": "abc"}).ref == "abc"
    assert refused({"type": "set-enabled", "ref": 9, "track_sid": "x", "enabled": 1}).ref == 9


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_never_escapes_as_another_error(value):
    with contextlib.suppress(p.ProtocolError):
        p.parse_client_message(json.dumps(value))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(p.CLIENT_MESSAGE_TYPES)),
    st.dictionaries(
        st.sampled_from(
            [
                "version",
                "token",
                "sdp",
                "negotiation",
                "tracks",
                "track_sid",
                "enabled",
                "width",
                "height",
                "ref",
                "room",
                "reconnect_token",
                "x",
            ]
        ),
        st.none()
        | st.booleans()
        | st.integers(-5, 2**40)
        | st.text(max_size=40)
        | st.lists(
            st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3), max_size=3
        ),
        max_size=5,
    ),
)
def test_known_types_with_arbitrary_fields(kind, fields):
    try:
        message = p.parse_client_message(json.dumps({"type": kind, **fields}))
    except p.ProtocolError as exc:
        assert exc.code in {53004, 53300, 53301, 53302, 53303, 53403, 53404}
    else:
        assert isinstance(message, p.ClientMessage)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_as_text(data):
    with contextlib.suppress(p.ProtocolError):
        p.parse_client_message(data.decode("latin-1"))


def test_server_messages():
    assert p.error_message(53004, "m", "r") == {
        "type": "error",
        "code": 53004,
        "message": "m",
        "ref": "r",
    }
    assert p.disconnected_message(None, "left") == {
        "type": "disconnected",
        "code": None,
        "message": "left",
    }
    assert json.loads(p.encode(p.ping_message(3))) == {"type": "ping", "ref": 3}
    assert p.pong_message(None) == {"type": "pong"}
