"""The admin page's backend on the appliance: settings, live vs restart, export/import, reset."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from appliance.admin_backend import ApplianceBackend, apply_live_settings
from appliance.config import load_config, parse_settings, save_config, settings_to_dict
from appliance.state import DaemonState
from edge_sfu.invites import DEFAULT_INVITE_GUESTS, verify_invite
from edge_sfu.keys import KeyStore
from edge_sfu.rooms import RoomDefaults, RoomSettings
from edge_sfu.rooms.model import utcnow
from edge_sfu.store import RoomFilter


@pytest.fixture
def state(tmp_path: Path) -> DaemonState:
    config = tmp_path / "config.toml"
    settings = parse_settings(
        {"kiosk": {"remote_url": "https://b.local", "remote_token": "tok-123"}}
    )
    save_config(config, settings)
    return DaemonState.open(settings, config, tmp_path / "data")


def backend(state: DaemonState, applied: list[set[str]] | None = None) -> ApplianceBackend:
    sink = applied if applied is not None else []
    return ApplianceBackend(state, sink.append)


def test_schema_covers_every_key_and_each_layer(state):
    paths = {f.path for f in backend(state).settings_schema()}
    assert {"unit.name", "rooms.max_participants", "media.turn_credential"} <= paths
    assert {"camera.layers.0.width", "camera.layers.1.bitrate"} <= paths
    secret = {f.path for f in backend(state).settings_schema() if f.secret}
    assert secret == {
        "media.turn_credential",
        "kiosk.remote_api_key_secret",
        "kiosk.remote_token",
        "field.whip_token",
        "metrics.token",
    }


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
    on_disk = tomllib.loads(state.unit.config_path.read_text())
    assert on_disk["rooms"]["max_participants"] == 7 and on_disk["unit"]["name"] == "room-b"
    # In force now: the live key only; the name waits for the restart.
    assert state.settings.rooms.max_participants == 7
    assert state.settings.unit.name == "edge-unit"


def test_a_save_keeps_earlier_saves_that_wait_for_a_restart(state):
    b = backend(state)
    data = b.load_settings()
    data["media"]["turn_credential"] = "turn-s3cret"  # both need a restart
    data["media"]["udp_port_min"], data["media"]["udp_port_max"] = 40000, 40100
    b.save_settings(data)
    pending = ["media.turn_credential", "media.udp_port_max", "media.udp_port_min"]
    assert list(b.pending_restart()) == pending
    # the page and the export show what is saved, not what is in force
    shown = b.load_settings()
    assert shown["media"]["udp_port_min"] == 40000
    assert shown["media"]["turn_credential"] == "turn-s3cret"
    assert b.export_config(include_secrets=True)["media"]["udp_port_max"] == 40100
    # a second save (of something else) keeps the first one
    result = b.save_settings({"audio": {"volume": 20}})
    assert list(result.applied_live) == ["audio.volume"]
    assert list(result.needs_restart) == pending
    on_disk = load_config(state.unit.config_path)
    assert (on_disk.media.udp_port_min, on_disk.media.udp_port_max) == (40000, 40100)
    assert on_disk.media.turn_credential == "turn-s3cret"
    assert on_disk.audio.volume == 20
    assert state.settings.media.udp_port_min == 0  # still waits for the restart


def test_an_import_without_secrets_keeps_the_saved_ones(state):
    b = backend(state)
    data = b.load_settings()
    data["media"]["turn_credential"] = "turn-s3cret"
    b.save_settings(data)
    public = b.export_config(include_secrets=False)
    assert public["media"]["turn_credential"] == ""
    b.import_config(public)
    assert load_config(state.unit.config_path).media.turn_credential == "turn-s3cret"


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
    reloaded = load_config(state.unit.config_path)
    assert reloaded.kiosk.remote_token == "tok-123"  # kept: the import left it out
    assert reloaded.audio.volume == 30


def test_keys_and_invites(state):
    b = backend(state)
    sid, secret = b.create_api_key("booking")
    assert [k.sid for k in b.list_api_keys()] == [sid]
    assert state.unit.keys is not None and state.unit.keys.check_secret(sid, secret) is not None
    assert b.revoke_api_key(sid) and not b.revoke_api_key(sid)
    assert state.unit.identity is not None
    assert not b.revoke_api_key(state.unit.identity.signing_key.sid)  # the unit's own key stays
    url = b.create_invite("stand up", 3600)
    assert "/join/stand%20up?invite=" in url
    invite = verify_invite(url.split("invite=")[1], state.unit.identity.auth_token)
    assert (invite.room, invite.guests) == ("stand up", DEFAULT_INVITE_GUESTS)
    url = b.create_invite("stand up", 3600, 2)
    assert verify_invite(url.split("invite=")[1], state.unit.identity.auth_token).guests == 2


def test_factory_reset_erases_and_restarts(state):
    stops: list[bool] = []
    state.request_stop = lambda: stops.append(True)
    b = backend(state)
    b.create_api_key("x")
    b.factory_reset()
    assert not state.unit.config_path.exists()
    assert not (state.unit.data_dir / "keys.json").exists()
    assert not (state.unit.data_dir / "identity.json").exists()
    assert state.restart_requested and stops == [True]


async def _used_unit(data_dir: Path):
    """A unit's SFU on ``data_dir`` as the daemon opens it."""
    from edge_sfu.context import SfuContext
    from edge_sfu.identity import load_or_create_identity as identity_of

    identity = identity_of(data_dir)
    keys = KeyStore(data_dir, builtin=identity.signing_key)
    ctx = SfuContext.open(data_dir, identity, keys)
    await ctx.start()
    return ctx


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def test_factory_reset_leaves_the_data_dir_of_a_fresh_unit(state, tmp_path):
    stops: list[bool] = []
    state.request_stop = lambda: stops.append(True)
    ctx = await _used_unit(state.unit.data_dir)
    old_account = ctx.identity.account_sid
    # History, a callback waiting for delivery (nobody listens there), an API key.
    defaults = RoomDefaults(status_callback="http://127.0.0.1:9/cb")
    await ctx.rooms.create_room("old", RoomSettings.from_defaults(defaults))
    assert ctx.store.outbox_size() > 0
    backend(state).create_api_key("booking")
    backend(state).factory_reset()
    await ctx.close()  # the daemon shuts down, then starts again
    again = await _used_unit(state.unit.data_dir)
    fresh = await _used_unit(tmp_path / "fresh")
    try:
        assert _listing(state.unit.data_dir) == _listing(tmp_path / "fresh")
        assert again.identity.account_sid != old_account
        assert again.store.find_rooms(RoomFilter(), 50, 0) == []
        assert again.store.outbox_size() == 0
        assert [k.sid for k in again.keys.list()] == []
    finally:
        await again.close()
        await fresh.close()


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


def test_an_imported_config_has_the_limit_of_a_config_file():
    from appliance.config import MAX_CONFIG_BYTES
    from provisioning.app import MAX_UPLOAD_BYTES

    assert MAX_UPLOAD_BYTES == MAX_CONFIG_BYTES


def test_the_invite_page_offers_the_limits_invites_have():
    from edge_sfu.invites import MAX_INVITE_GUESTS
    from provisioning.handlers_admin import DEFAULT_GUESTS, MAX_GUESTS

    assert (DEFAULT_GUESTS, MAX_GUESTS) == (DEFAULT_INVITE_GUESTS, MAX_INVITE_GUESTS)


def test_invites_follow_the_one_lifetime_rule(state):
    from edge_sfu.errors import TokenError
    from edge_sfu.invites import MAX_INVITE_TTL, MIN_INVITE_TTL

    b = backend(state)
    assert b.invite_lifetime() == (MIN_INVITE_TTL, MAX_INVITE_TTL) == (300, 7 * 24 * 3600)
    for ttl in (MIN_INVITE_TTL - 1, MAX_INVITE_TTL + 1):
        with pytest.raises(TokenError, match="5 minutes to 7 days"):
            b.create_invite("stand up", ttl)
    assert "?invite=" in b.create_invite("stand up", MIN_INVITE_TTL)


def test_address_after_restart_follows_the_saved_http_settings(state):
    b = backend(state)
    assert (b.address_after_restart().tls, b.address_after_restart().port) == (True, 8443)
    data = b.load_settings()
    data["http"].update({"tls": False, "listen": "127.0.0.1:8080"})
    b.save_settings(data)
    after = b.address_after_restart()
    assert (after.tls, after.port, after.public_url) == (False, 8080, "")
    assert state.settings.http.tls is True  # in force until the restart


async def test_recordings_are_listed_with_links_and_deleted(state):
    from edge_sfu.rooms.recordings import Recording

    ctx = await _used_unit(state.unit.data_dir)
    state.sfu = ctx
    try:
        room = await ctx.rooms.create_room("filmed", RoomSettings.from_defaults(RoomDefaults()))
        now = utcnow()
        rec = Recording(
            "RT" + "a" * 32, room.sid, "PA" + "b" * 32, "MT" + "c" * 32, "camera", "video",
            "H264", "mkv", "completed", "RT" + "a" * 32 + ".mkv", now, now, 0, 3, 5,
        )  # fmt: skip
        ctx.store.save_recording(rec)
        (ctx.recordings.directory / rec.file_name).write_bytes(b"12345")
        (item,) = backend(state).list_media()
        assert (item.sid, item.kind, item.room, item.title) == (
            rec.sid,
            "recording",
            "filmed",
            "camera",
        )
        assert item.url.startswith(f"/v1/Media/{rec.sid}?Expires=") and "Signature=" in item.url
        assert backend(state).delete_media(rec.sid)
        assert not (ctx.recordings.directory / rec.file_name).exists()
        assert ctx.store.get_recording(rec.sid).status == "deleted"
        assert backend(state).list_media()[0].url == ""
        assert not backend(state).delete_media(rec.sid)
        assert not backend(state).delete_media("CJ" + "0" * 32)
    finally:
        await ctx.close()
