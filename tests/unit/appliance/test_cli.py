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
