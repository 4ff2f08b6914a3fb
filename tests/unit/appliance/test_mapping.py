"""The config tables reach the SFU and the hardware as their own settings objects."""

from __future__ import annotations

from appliance.config import parse_settings
from appliance.mapping import (
    audio_spec,
    camera_spec,
    media_settings,
    public_base_url,
    room_defaults,
    whip_settings,
)


def test_media_settings_from_config():
    s = parse_settings(
        {
            "media": {
                "stun_servers": ["stun:stun.example.org:3478"],
                "turn_servers": ["turn:t.example.org"],
                "turn_username": "u",
                "turn_credential": "p",
                "udp_port_min": 40000,
                "udp_port_max": 40099,
            }
        }
    )
    media = media_settings(s)
    assert media.udp_port_range == (40000, 40099)
    urls = [server.urls for server in media.ice_servers]
    assert urls == [("stun:stun.example.org:3478",), ("turn:t.example.org",)]
    assert media.ice_servers[1].username == "u" and media.ice_servers[1].credential == "p"


def test_lan_only_by_default():
    media = media_settings(parse_settings({}))
    assert media.ice_servers == () and media.udp_port_range is None
    assert media.rtc_configuration().iceServers == []  # never aiortc's public STUN default


def test_room_defaults_from_config():
    s = parse_settings(
        {
            "rooms": {
                "max_participants": 7,
                "empty_room_timeout": 2,
                "status_callback": "https://backend.example/cb",
            }
        }
    )
    d = room_defaults(s)
    assert (d.max_participants, d.empty_room_timeout) == (7, 2)
    assert d.status_callback == "https://backend.example/cb"
    assert room_defaults(parse_settings({})).status_callback is None


def test_hardware_specs_from_config():
    s = parse_settings(
        {
            "camera": {"framerate": 15, "layers": [{"name": "only", "width": 640, "height": 360}]},
            "audio": {"capture_device": "hw:1", "period_ms": 10},
        }
    )
    cam = camera_spec(s)
    assert (
        cam is not None and cam.framerate == 15 and [layer.name for layer in cam.layers] == ["only"]
    )
    audio = audio_spec(s)
    assert audio is not None and audio.capture_device == "hw:1" and audio.period_ms == 10
    assert camera_spec(parse_settings({"camera": {"backend": "none"}})) is None
    assert audio_spec(parse_settings({"audio": {"enabled": False}})) is None


def test_public_url():
    assert (
        public_base_url(parse_settings({"unit": {"name": "room-a"}})) == "https://room-a.local:8443"
    )
    s = parse_settings({"http": {"listen": "127.0.0.1:8080", "tls": False}})
    assert public_base_url(s, port=9000) == "http://127.0.0.1:9000"
    s = parse_settings({"http": {"public_url": "https://unit.example/"}})
    assert public_base_url(s) == "https://unit.example"


def test_loopback_only_keeps_media_candidates_on_loopback(monkeypatch):
    from appliance.confinement import LOOPBACK_ONLY_ENV

    monkeypatch.setenv(LOOPBACK_ONLY_ENV, "1")
    assert media_settings(parse_settings({})).host_addresses == ("127.0.0.1",)
    monkeypatch.setenv(LOOPBACK_ONLY_ENV, "")
    assert media_settings(parse_settings({})).host_addresses is None


def test_whip_settings_from_config():
    default = whip_settings(parse_settings({}))
    assert (default.connect_timeout, default.max_sessions) == (30.0, 0)
    timed = whip_settings(parse_settings({"whip": {"connect_timeout": 5, "max_sessions": 40}}))
    assert timed.connect_timeout == 5.0 and isinstance(timed.connect_timeout, float)
    assert timed.max_sessions == 40
