"""The config file: defaults, every kind of mistake named by its key, atomic round trips."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from appliance.config import (
    ConfigError,
    field_specs,
    load_config,
    parse_settings,
    save_config,
    settings_to_dict,
    validate_settings,
)
from appliance.settings import Settings


def problems(data: dict) -> dict[str, str]:
    return validate_settings(data)


def test_missing_file_means_defaults(tmp_path: Path):
    assert load_config(tmp_path / "absent.toml") == Settings()


def test_round_trip_is_exact_and_private(tmp_path: Path):
    path = tmp_path / "config.toml"
    s = parse_settings(
        {
            "unit": {"name": "room-a"},
            "camera": {
                "layers": [{"name": "only", "width": 640, "height": 360, "bitrate": 800000}]
            },
        }
    )
    save_config(path, s)
    assert load_config(path) == s
    assert os.stat(path).st_mode & 0o077 == 0o040  # group-readable for the service, no others
    assert tomllib.loads(path.read_text())["unit"]["name"] == "room-a"


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"unti": {}}, "unti", "unknown key"),
        ({"unit": {"nmae": "x"}}, "unit.nmae", "allowed: name, role"),
        ({"unit": {"role": "server"}}, "unit.role", "'kiosk', 'field', 'hub'"),
        ({"unit": {"name": "Bad Name!"}}, "unit.name", "must match"),
        ({"rooms": {"max_participants": 0}}, "rooms.max_participants", "from 1 to 50"),
        ({"rooms": {"max_participants": "10"}}, "rooms.max_participants", "must be an integer"),
        ({"rooms": {"max_participants": True}}, "rooms.max_participants", "must be an integer"),
        ({"audio": {"enabled": "yes"}}, "audio.enabled", "true or false"),
        ({"audio": {"period_ms": 15}}, "audio.period_ms", "one of 10, 20"),
        ({"camera": {"layers": []}}, "camera.layers", "1 to 3 items"),
        ({"camera": {"layers": [{"width": 5000}]}}, "camera.layers[0].width", "from 16 to 1920"),
        ({"camera": {"layers": "big"}}, "camera.layers", "must be a list"),
        ({"media": {"stun_servers": ["http://x"]}}, "media.stun_servers[0]", "must match"),
        ({"media": {"udp_port_min": 50000}}, "media.udp_port_max", "both 0"),
        ({"gpio": {"join_button": 27}}, "gpio.mute_button", "already used by gpio.join_button"),
        ({"http": {"listen": "nowhere"}}, "http.listen", "must match"),
        ({"kiosk": {"remote_url": "https://other.local"}}, "kiosk.remote_url", "remote_token"),
        ({"unit": "kiosk"}, "unit", "must be a table"),
        ({"kiosk": {"identity": "a\x00b"}}, "kiosk.identity", "control characters"),
        ({"whip": {"connect_timeout": 0}}, "whip.connect_timeout", "from 1.0 to 600.0"),
        ({"whip": {"connect_timeout": "30s"}}, "whip.connect_timeout", "must be a number"),
        ({"whip": {"expiry": 30}}, "whip.expiry", "allowed: connect_timeout, max_sessions"),
        ({"whip": {"max_sessions": -1}}, "whip.max_sessions", "from 0 to 1000"),
        ({"whip": {"max_sessions": 2.5}}, "whip.max_sessions", "must be an integer"),
    ],
)
def test_each_mistake_names_its_key(data, key, fragment):
    found = problems(data)
    assert key in found, found
    assert fragment in found[key]


def test_every_problem_is_reported_at_once():
    found = problems({"unit": {"role": "x", "name": "UPPER"}, "rooms": {"max_participants": -1}})
    assert set(found) == {"unit.role", "unit.name", "rooms.max_participants"}


def test_layers_must_be_largest_first():
    layers = [
        {"name": "a", "width": 320, "height": 180},
        {"name": "b", "width": 1280, "height": 720},
    ]
    assert "largest first" in problems({"camera": {"layers": layers}})["camera.layers"]


def test_broken_toml_is_a_config_error(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text("[unit\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_huge_file_is_refused(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text("# " + "x" * 300_000)
    with pytest.raises(ConfigError, match="larger than"):
        load_config(path)


def test_secrets_left_out_unless_asked():
    s = parse_settings(
        {
            "kiosk": {"remote_url": "https://o.local", "remote_token": "tok"},
            "media": {"turn_credential": "pw"},
        }
    )
    public = settings_to_dict(s, include_secrets=False)
    assert public["kiosk"]["remote_token"] == "" and public["media"]["turn_credential"] == ""
    assert settings_to_dict(s)["kiosk"]["remote_token"] == "tok"


def test_field_specs_cover_every_key():
    keys = {spec["key"] for spec in field_specs()}
    defaults = settings_to_dict(Settings())
    assert keys == {f"{section}.{name}" for section, table in defaults.items() for name in table}
    role = next(s for s in field_specs() if s["key"] == "unit.role")
    assert role["choices"] == ("kiosk", "field", "hub") and role["type"] == "str"


def test_configuration_reference_is_current():
    from appliance.config_doc import render

    doc = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
    hint = "run: python -m appliance.config_doc > docs/configuration.md"
    assert doc.read_text() == render(), hint
