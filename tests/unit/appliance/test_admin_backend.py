"""The admin page's backend on the appliance: settings, live vs restart, export/import, reset."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from appliance.admin_backend import ApplianceBackend, apply_live_settings
from appliance.app import DaemonState
from appliance.config import load_config, parse_settings, save_config, settings_to_dict
from edge_sfu.identity import load_or_create_identity
from edge_sfu.keys import KeyStore


@pytest.fixture
def state(tmp_path: Path) -> DaemonState:
    config = tmp_path / "config.toml"
    settings = parse_settings(
        {"kiosk": {"remote_url": "https://b.local", "remote_token": "tok-123"}}
    )
    save_config(config, settings)
    s = DaemonState(settings=settings, config_path=config, data_dir=tmp_path / "data")
    s.identity = load_or_create_identity(s.data_dir)
    s.keys = KeyStore(s.data_dir, builtin=s.identity.signing_key)
    return s


def backend(state: DaemonState, applied: list[set[str]] | None = None) -> ApplianceBackend:
    sink = applied if applied is not None else []
    return ApplianceBackend(state, sink.append)


def test_schema_covers_every_key_and_each_layer(state):
    paths = {f.path for f in backend(state).settings_schema()}
    assert {"unit.name", "rooms.max_participants", "media.turn_credential"} <= paths
    assert {"camera.layers.0.width", "camera.layers.1.bitrate"} <= paths
    secret = {f.path for f in backend(state).settings_schema() if f.secret}
    assert secret == {"media.turn_credential", "kiosk.remote_api_key_secret", "kiosk.remote_token"}


def test_live_and_restart_keys_are_told_apart(state):
    applied: list[set[str]] = []
    b = backend(state, applied)
    data = b.load_settings()
    data["rooms"]["max_participants"] = 7  # live
    data["unit"]["name"] = "room-b"  # needs a restart
    result = b.save_settings(data)
    assert list(result.applied_live) == ["rooms.max_participants"]
    assert list(result.needs_restart) == ["unit.name"]
    assert applied == [{"rooms.max_participants"}]
    on_disk = tomllib.loads(state.config_path.read_text())
    assert on_disk["rooms"]["max_participants"] == 7 and on_disk["unit"]["name"] == "room-b"
    # In force now: the live key only; the name waits for the restart.
    assert state.settings.rooms.max_participants == 7
    assert state.settings.unit.name == "edge-unit"


def test_validation_paths_match_the_form(state):
    data = backend(state).load_settings()
    data["camera"]["layers"][0]["width"] = 5000
    assert "camera.layers.0.width" in backend(state).validate_settings(data)
    data = backend(state).load_settings()
    data["gpio"]["mute_button"] = data["gpio"]["join_button"]  # a cross-field check
    assert "gpio.mute_button" in backend(state).validate_settings(data)


def test_export_leaves_secrets_out_and_import_keeps_them(state):
    b = backend(state)
    public = b.export_config(include_secrets=False)
    assert public["kiosk"]["remote_token"] == ""
    assert b.export_config(include_secrets=True)["kiosk"]["remote_token"] == "tok-123"
    public["audio"]["volume"] = 30
    b.import_config(public)
    reloaded = load_config(state.config_path)
    assert reloaded.kiosk.remote_token == "tok-123"  # kept: the import left it out
    assert reloaded.audio.volume == 30


def test_keys_and_invites(state):
    b = backend(state)
    sid, secret = b.create_api_key("booking")
    assert [k.sid for k in b.list_api_keys()] == [sid]
    assert state.keys is not None and state.keys.check_secret(sid, secret) is not None
    assert b.revoke_api_key(sid) and not b.revoke_api_key(sid)
    assert state.identity is not None
    assert not b.revoke_api_key(state.identity.signing_key.sid)  # the unit's own key stays
    url = b.create_invite("stand up", 3600)
    assert "/join/stand%20up?invite=" in url


def test_factory_reset_erases_and_restarts(state):
    stops: list[bool] = []
    state.request_stop = lambda: stops.append(True)
    b = backend(state)
    b.create_api_key("x")
    b.factory_reset()
    assert not state.config_path.exists()
    assert not (state.data_dir / "keys.json").exists()
    assert not (state.data_dir / "identity.json").exists()
    assert state.restart_requested and stops == [True]


def test_live_room_defaults_reach_the_room_service(state, tmp_path):
    from edge_sfu.rooms import RoomService
    from edge_sfu.store import Store

    class Sfu:  # only the attribute apply_live_settings touches
        rooms = RoomService(Store.in_data_dir(tmp_path / "db"))

    state.sfu = Sfu()  # type: ignore[assignment]
    state.settings = parse_settings(
        {**settings_to_dict(state.settings), "rooms": {"max_participants": 3}}
    )
    apply_live_settings(state, {"rooms.max_participants"})
    assert Sfu.rooms.defaults.max_participants == 3
    Sfu.rooms.store.close()
