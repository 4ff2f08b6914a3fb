"""README.md's "Using it" commands, run literally against a unit started the way `make run` does.

The unit runs with the Makefile's own `run` command line (on loopback, with a free port instead
of 8080) in a directory laid out like a clone; the README block then runs line by line in one
shell from that directory, and each command must act on that very unit: its claim code, its
account, its keys, its config file, its control socket.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge_sfu.identity import load_or_create_identity
from edge_sfu.invites import verify_invite
from edge_sfu.keys import KeyStore
from edge_sfu.tokens import verify_access_token
from tests.support.daemon import READY_LINE, stop_process
from tests.support.waiting import wait_for_sync

ROOT = Path(__file__).resolve().parents[3]
MARK = "@@@ exit status"


def readme_block(section: str) -> list[str]:
    """The lines of the first ``sh`` block under ``## <section>`` in README.md."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    block = body.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def make_run_argv() -> list[str]:
    """The Makefile's `run` recipe, its variables expanded."""
    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+) :?= (.*)$", makefile, re.MULTILINE))
    recipe = makefile.split("\nrun:", 1)[1].split("\n\t", 1)[1].split("\n", 1)[0]
    while "$(" in recipe:
        recipe = re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], recipe)
    return shlex.split(recipe)


def clean_env() -> dict[str, str]:
    """This environment without anything that would point the commands at a unit already."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_APPLIANCE_")}
    env.pop("VIRTUAL_ENV", None)
    env.pop("NOTIFY_SOCKET", None)
    return env


@contextmanager
def make_run(clone: Path) -> Iterator[tuple[str, list[str]]]:
    """Start the unit as `make run` does from ``clone``; yield its URL and its output so far."""
    argv = make_run_argv()
    assert argv[0] == ".venv/bin/edge-appliance" and argv[1] == "run", argv
    # The Makefile's port (the dev config's 8080) may be taken here: any free loopback port.
    argv += ["--listen", "127.0.0.1:0"]
    env = {**clean_env(), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        argv, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        output.extend(proc.stdout)

    threading.Thread(target=pump, daemon=True).start()
    try:

        def ready() -> re.Match[str] | None:
            if proc.poll() is not None:
                raise AssertionError("the unit did not start:\n" + "".join(output))
            return READY_LINE.search("".join(output))

        match = wait_for_sync(ready, timeout=60, what="the unit ready", interval=0.05)
        yield match.group(1), output
    finally:
        stop_process(proc)


def run_block(clone: Path, lines: list[str]) -> list[tuple[str, int, str]]:
    """Run ``lines`` in one shell from ``clone``; per line its exit status and its output."""
    script = "exec 2>&1\n" + "".join(f'{line}\necho "{MARK} $?"\n' for line in lines)
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=clone,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    chunks = re.split(rf"^{MARK} (\d+)\n", done.stdout, flags=re.MULTILINE)
    outputs, statuses = chunks[0::2], chunks[1::2]
    assert len(statuses) == len(lines), done.stdout + done.stderr
    return [(line, int(s), out) for line, s, out in zip(lines, statuses, outputs, strict=False)]


def test_readme_commands_act_on_the_unit_make_run_started(tmp_path: Path):
    # A clone as `make run` leaves it: its virtual environment (this one) and, once the unit
    # has started, ./var/ with the config and data the Makefile names.
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    assert (clone / ".venv" / "bin" / "edge-appliance").exists()
    lines = readme_block("Using it")
    with make_run(clone) as (_, output):
        config, data = clone / "var" / "config.toml", clone / "var" / "data"
        # `make run` says how to point the commands at it: the README's own export line.
        said = "".join(output)
        assert f"export EDGE_APPLIANCE_CONFIG={config}\n" in said, said
        assert f"export EDGE_APPLIANCE_DATA_DIR={data}\n" in said, said
        assert "export EDGE_APPLIANCE_CONFIG=$PWD/var/config.toml" in lines[1], lines
        assert "EDGE_APPLIANCE_DATA_DIR=$PWD/var/data" in lines[1], lines
        claim_code = re.search(r"enter claim code (\S+)", said)
        assert claim_code is not None, said

        results = {line.split("#")[0].strip(): (s, out) for line, s, out in run_block(clone, lines)}
        for line, (code, out) in results.items():
            assert code == 0, f"{line!r} exited {code}:\n{out}"
            assert "ALSA lib" not in out and "Traceback" not in out, out

        identity = load_or_create_identity(data)
        keys = KeyStore(data, builtin=identity.signing_key)
        # The running unit's claim code, not one of a unit nobody runs.
        assert results["edge-appliance claim-code"][1].strip() == claim_code.group(1)
        # A key of this unit's account, in this unit's key store.
        created = results["edge-appliance keys create --name backend"][1]
        assert f"Account: {identity.account_sid}" in created, created
        sid = re.search(r"SID:\s+(SK\w+)", created)
        assert sid is not None and sid.group(1) in {k.sid for k in keys.list()}
        # A token and an invite this unit accepts.
        token = results["edge-appliance token --identity alice --room standup"][1].strip()
        assert verify_access_token(token, keys, identity.account_sid, room="standup")
        link = results["edge-appliance invite --room standup"][1].strip()
        assert "/join/standup?invite=" in link, link
        assert verify_invite(link.split("invite=")[1], identity.auth_token).room == "standup"
        assert "camera" in results["edge-appliance doctor"][1]
        assert results["edge-appliance check-config"][1].strip() == f"{config}: ok"
        # The press reached this unit's daemon, which acted on it.
        pressed = results["edge-appliance press join"][1]
        assert pressed.startswith("join: acted on; now joining"), pressed
        reset = results["edge-appliance admin reset-password"][1]
        assert "Claim the unit again" in reset, reset
        # Nothing was made anywhere else: the unit's files are the only ones.
        assert sorted(p.name for p in clone.iterdir()) == [".venv", "var"]


def test_a_command_without_the_unit_says_so_and_creates_nothing(tmp_path: Path):
    # In a shell where the export line was not run, on a machine with no installed unit: the
    # command names what it looked for instead of making a unit of its own.
    default_config, default_data = Path("/etc/edge-appliance"), Path("/var/lib/edge-appliance")
    if default_config.exists() or default_data.exists():
        pytest.skip("a unit is installed on this machine: the defaults are that unit")
    done = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "keys", "create", "--name", "backend"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert f"config file {default_config / 'config.toml'} does not exist" in done.stderr
    assert "EDGE_APPLIANCE_CONFIG=PATH" in done.stderr
    assert list(tmp_path.iterdir()) == []
    assert not default_config.exists() and not default_data.exists()
