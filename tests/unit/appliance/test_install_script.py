"""scripts/install-pi.sh and the config template it installs.

The installer itself needs a Pi (apt, systemd as PID 1); here it is checked statically
(bash -n, shellcheck), its argument handling is run, and the pieces it installs are checked
against each other and against the config schema.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from appliance.config import load_config, parse_settings

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "install-pi.sh"
UNIT = REPO / "systemd" / "edge-appliance.service"
TEMPLATE = REPO / "systemd" / "config.example.toml"


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=30, check=False
    )


def script_var(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)$", SCRIPT.read_text(), re.MULTILINE)
    assert match, name
    return match.group(1)


def test_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)
    assert SCRIPT.stat().st_mode & 0o111, "the Makefile runs it directly: keep it executable"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_shellcheck_is_clean() -> None:
    result = subprocess.run(
        ["shellcheck", "-x", str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout


def test_help_and_bad_options() -> None:
    result = run_script("--help")
    assert result.returncode == 0
    assert "sudo ./scripts/install-pi.sh [--no-start]" in result.stdout
    assert "set -euo" not in result.stdout
    result = run_script("--frobnicate")
    assert result.returncode == 1
    assert "unknown option: --frobnicate" in result.stderr


def test_script_paths_match_the_unit() -> None:
    exec_start = next(
        line.split("=", 1)[1]
        for line in UNIT.read_text().splitlines()
        if line.startswith("ExecStart=")
    )
    venv = script_var("VENV").replace("$PREFIX", script_var("PREFIX"))
    config = script_var("CONFIG").replace("$CONFIG_DIR", script_var("CONFIG_DIR"))
    assert exec_start == (
        f"{venv}/bin/edge-appliance run --config {config} --data-dir {script_var('DATA_DIR')}"
    )


def test_template_is_a_valid_config() -> None:
    settings = load_config(TEMPLATE)
    assert (settings.unit.role, settings.unit.name) == ("kiosk", "edge-unit")
    assert settings.kiosk.room and settings.kiosk.identity
    # The unit grants no CAP_NET_BIND_SERVICE: the default listen port must be >= 1024.
    assert int(settings.http.listen.rsplit(":", 1)[1]) >= 1024


def test_template_leave_on_matches_the_kiosk_machine() -> None:
    from appliance.kiosk.state import LeaveOn
    from appliance.settings import LEAVE_ON

    for value in LEAVE_ON:
        LeaveOn(value)  # every configurable value has a machine policy
    assert LeaveOn(load_config(TEMPLATE).kiosk.leave_on) is LeaveOn.PRESS_AGAIN


@pytest.mark.parametrize(
    ("hostname", "expected"),
    [
        ("kiosk-boardroom", "kiosk-boardroom"),
        ("Pi4", "pi4"),
        ("my_pi", "edge-unit"),
        ("", "edge-unit"),
    ],
)
def test_unit_name_from_hostname(tmp_path: Path, hostname: str, expected: str) -> None:
    fake = tmp_path / "hostname"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' '{hostname}'\n")
    fake.chmod(0o755)
    function = re.search(r"^unit_name\(\) \{.*?^\}", SCRIPT.read_text(), re.MULTILINE | re.DOTALL)
    assert function
    result = subprocess.run(
        ["bash", "-c", f"{function.group(0)}\nunit_name"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
    )
    assert result.stdout == expected
    # The installer substitutes the name into the template; the result must still load.
    text = TEMPLATE.read_text().replace('name = "edge-unit"', f'name = "{result.stdout}"')
    assert parse_settings(tomllib.loads(text)).unit.name == expected
