"""The console commands: keys, tokens and invites against a real data directory."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from appliance.cli import main
from edge_sfu.identity import load_or_create_identity
from edge_sfu.invites import verify_invite
from edge_sfu.keys import KeyStore
from edge_sfu.tokens import verify_access_token


@pytest.fixture
def dirs(tmp_path: Path) -> list[str]:
    # A unit that exists, as `edge-appliance run` leaves it: other commands never create one.
    (tmp_path / "data").mkdir()
    (tmp_path / "config.toml").write_text("")
    return ["--data-dir", str(tmp_path / "data"), "--config", str(tmp_path / "config.toml")]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_create_list_revoke(capsys, dirs, tmp_path):
    code, out, _ = run(capsys, "keys", "create", "--name", "backend", "--json", *dirs)
    assert code == 0
    created = json.loads(out)
    assert created["sid"].startswith("SK") and len(created["sid"]) == 34
    assert len(created["secret"]) == 32 and created["account_sid"].startswith("AC")
    data = tmp_path / "data"
    for name in ("identity.json", "keys.json"):
        assert stat.S_IMODE(os.stat(data / name).st_mode) == 0o600
    code, out, _ = run(capsys, "keys", "list", "--json", *dirs)
    listed = json.loads(out)
    assert [k["sid"] for k in listed] == [created["sid"]]
    assert created["secret"] not in out
    assert run(capsys, "keys", "revoke", created["sid"], *dirs)[0] == 0
    assert json.loads(run(capsys, "keys", "list", "--json", *dirs)[1]) == []
    code, _, err = run(capsys, "keys", "revoke", created["sid"], *dirs)
    assert code == 1 and "not found" in err


def test_identity_is_stable_across_commands(capsys, dirs):
    first = json.loads(run(capsys, "keys", "create", "--name", "a", "--json", *dirs)[1])
    second = json.loads(run(capsys, "keys", "create", "--name", "b", "--json", *dirs)[1])
    assert first["account_sid"] == second["account_sid"]


def test_token_verifies_with_the_unit_key(capsys, dirs, tmp_path):
    code, out, _ = run(
        capsys, "token", "--identity", "alice", "--room", "standup", "--ttl", "600", *dirs
    )
    assert code == 0
    data = tmp_path / "data"
    identity = load_or_create_identity(data)
    keys = KeyStore(data, builtin=identity.signing_key)
    claims = verify_access_token(out.strip(), keys, identity.account_sid, room="standup")
    assert claims.identity == "alice"
    payload = jwt.decode(out.strip(), options={"verify_signature": False})
    assert payload["exp"] - payload["nbf"] == 600


def test_token_refuses_bad_ttl(capsys, dirs):
    code, _, err = run(capsys, "token", "--identity", "a", "--ttl", "90000", *dirs)
    assert code == 1 and "Ttl" in err


def test_invite_url(capsys, dirs, tmp_path):
    (tmp_path / "config.toml").write_text('[http]\npublic_url = "https://room-a.local:8443"\n')
    code, out, _ = run(capsys, "invite", "--room", "stand up", "--ttl", "3600", *dirs)
    assert code == 0
    url = out.strip()
    assert url.startswith("https://room-a.local:8443/join/stand%20up?invite=")
    identity = load_or_create_identity(tmp_path / "data")
    invite = verify_invite(url.split("invite=")[1], identity.auth_token)
    assert invite.room == "stand up"
    # Recorded, so the admin page lists it and can revoke it.
    from edge_sfu.rooms.model import utcnow
    from edge_sfu.store import Store

    store = Store.in_data_dir(tmp_path / "data")
    try:
        assert [(i.invite_id, i.room) for i in store.list_invites(utcnow())] == [
            (invite.invite_id, "stand up")
        ]
    finally:
        store.close()


def test_bad_config_names_the_key(capsys, dirs, tmp_path):
    (tmp_path / "config.toml").write_text("[rooms]\nmax_participant = 3\n")
    code, _, err = run(capsys, "check-config", *dirs)
    assert code == 2
    assert "rooms.max_participant: unknown key" in err


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("edge-appliance ")


#: Every command but `run`, with the arguments it needs.
COMMANDS = [
    ["keys", "create", "--name", "backend"],
    ["keys", "list"],
    ["keys", "revoke", "SK00000000000000000000000000000000"],
    ["token", "--identity", "alice"],
    ["invite", "--room", "standup"],
    ["check-config"],
    ["doctor"],
    ["press", "join"],
    ["claim-code"],
    ["admin", "reset-password"],
]


def _files_under(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_commands_refuse_a_missing_unit_and_create_nothing(capsys, tmp_path, argv):
    config, data = tmp_path / "etc" / "config.toml", tmp_path / "lib" / "data"
    code, out, err = run(capsys, *argv, "--config", str(config), "--data-dir", str(data))
    assert code == 2 and out == ""
    assert f"config file {config} does not exist" in err
    assert "--config PATH or EDGE_APPLIANCE_CONFIG=PATH" in err
    assert _files_under(tmp_path) == []


#: The commands that use the data directory (check-config and doctor read the config only).
DATA_COMMANDS = [a for a in COMMANDS if a[0] not in ("check-config", "doctor")]


@pytest.mark.parametrize("argv", DATA_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_commands_refuse_a_missing_data_dir_and_create_nothing(capsys, tmp_path, argv):
    config, data = tmp_path / "config.toml", tmp_path / "data"
    config.write_text("")
    code, out, err = run(capsys, *argv, "--config", str(config), "--data-dir", str(data))
    assert code == 2 and out == ""
    assert f"data directory {data} does not exist" in err
    assert "--data-dir PATH or EDGE_APPLIANCE_DATA_DIR=PATH" in err
    assert _files_under(tmp_path) == [config]


def test_check_config_on_a_missing_file_is_an_error(capsys, tmp_path):
    (tmp_path / "data").mkdir()
    missing = tmp_path / "nowhere.toml"
    code, out, err = run(
        capsys, "check-config", "--config", str(missing), "--data-dir", str(tmp_path / "data")
    )
    assert code == 2 and "ok" not in out
    assert f"config file {missing} does not exist" in err


def test_the_environment_names_the_unit(capsys, monkeypatch, dirs, tmp_path):
    monkeypatch.setenv("EDGE_APPLIANCE_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("EDGE_APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    code, out, _ = run(capsys, "keys", "create", "--name", "backend", "--json")
    assert code == 0
    identity = load_or_create_identity(tmp_path / "data")
    assert json.loads(out)["account_sid"] == identity.account_sid
    code, out, _ = run(capsys, "check-config")
    assert (code, out.strip()) == (0, f"{tmp_path / 'config.toml'}: ok")


def test_flags_win_over_the_environment(capsys, monkeypatch, dirs, tmp_path):
    monkeypatch.setenv("EDGE_APPLIANCE_CONFIG", str(tmp_path / "elsewhere.toml"))
    monkeypatch.setenv("EDGE_APPLIANCE_DATA_DIR", str(tmp_path / "elsewhere"))
    code, out, _ = run(capsys, "check-config", *dirs)
    assert (code, out.strip()) == (0, f"{tmp_path / 'config.toml'}: ok")


def test_invite_lifetime_follows_the_one_rule(capsys, dirs):
    from edge_sfu.invites import MAX_INVITE_TTL, MIN_INVITE_TTL

    for ttl in (MIN_INVITE_TTL - 1, MAX_INVITE_TTL + 1):
        code, _, err = run(capsys, "invite", "--room", "r", "--ttl", str(ttl), *dirs)
        assert code == 1
        assert "lifetime must be 300 to 604800 seconds (5 minutes to 7 days)" in err
    for ttl in (MIN_INVITE_TTL, MAX_INVITE_TTL):
        assert run(capsys, "invite", "--room", "r", "--ttl", str(ttl), *dirs)[0] == 0


@pytest.mark.parametrize(
    "argv", [[], *(a[:1] if a[0] not in ("keys", "admin") else a[:2] for a in COMMANDS), ["run"]]
)
def test_help_renders_cleanly(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out  # no reStructuredText markup from docstrings
    assert all(len(line) <= 100 for line in out.splitlines())
    if not argv:
        # Each command has its help on its own line, beside its name.
        assert "    check-config    validate the config file" in out
        assert "EDGE_APPLIANCE_CONFIG" in out and "EDGE_APPLIANCE_DATA_DIR" in out
    else:
        assert "--config PATH" in out and "$EDGE_APPLIANCE_DATA_DIR" in out


def test_check_config_needs_no_data_dir_and_creates_none(capsys, tmp_path):
    # As the installer runs it: the config is written, the service makes the data dir later.
    config, data = tmp_path / "config.toml", tmp_path / "data"
    config.write_text("")
    code, out, _ = run(capsys, "check-config", "--config", str(config), "--data-dir", str(data))
    assert (code, out.strip()) == (0, f"{config}: ok")
    assert _files_under(tmp_path) == [config]
