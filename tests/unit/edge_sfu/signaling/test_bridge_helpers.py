"""Small pure helpers of the media bridge and the wire format."""

from __future__ import annotations

from edge_sfu.media import IceServer
from edge_sfu.media.slots import codec_preferences
from edge_sfu.signaling.media_bridge import sending_mids
from edge_sfu.signaling.wire import ice_servers_json

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 1 IN IP4 0.0.0.0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:0",
        "a=msid:PA1 MTaaa",
        "a=sendonly",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:1",
        "a=msid:PA1 MTbbb",
        "a=inactive",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:2",
        "a=recvonly",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=mid:3",
        "a=msid:PA2 MTccc",
        "a=sendrecv",
        "",
    ]
)


def test_sending_mids_maps_active_senders_only():
    assert sending_mids(OFFER) == {"MTaaa": "0", "MTccc": "3"}


def test_codec_preferences_pin_one_codec_with_rtx():
    video = codec_preferences("video", "H264")
    names = {c.mimeType.lower() for c in video}
    assert names == {"video/h264", "video/rtx"}
    assert {c.mimeType.lower() for c in codec_preferences("audio", "opus")} == {"audio/opus"}


def test_ice_servers_in_browser_shape():
    servers = (IceServer(("turn:t:3478",), "u", "p"), IceServer(("stun:s:3478",)))
    assert ice_servers_json(servers) == [
        {"urls": ["turn:t:3478"], "username": "u", "credential": "p"},
        {"urls": ["stun:s:3478"]},
    ]
    assert ice_servers_json(()) == []
