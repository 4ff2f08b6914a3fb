"""The daemon under a (simulated) systemd: readiness, status, watchdog, graceful stop."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

from tests.support.daemon import running_daemon


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_ready_only_once_http_answers_then_clean_stop(tmp_path: Path):
    with running_daemon(tmp_path) as daemon:
        daemon.notify.wait_for_line("READY=1", 60)
        # At the moment systemd hears READY, HTTP must already answer.
        url = daemon.wait_ready(5)
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        assert http_status(url + "/v1/Rooms") == 401  # the REST API, behind auth
        statuses = [line for line in daemon.notify.lines() if line.startswith("STATUS=")]
        assert any("Press to join" in line for line in statuses), statuses
        started = time.monotonic()
        assert daemon.stop(timeout=20) == 0
        assert time.monotonic() - started < 20  # within the unit's TimeoutStopSec
        lines = daemon.notify.lines()
        assert "STOPPING=1" in lines
        assert lines.index("READY=1") < lines.index("STOPPING=1")
        # The control socket is gone with the daemon.
        assert not (daemon.data_dir / "control.sock").exists()


def test_watchdog_pings_at_half_the_interval(tmp_path: Path):
    env = {"WATCHDOG_USEC": "2000000"}
    with running_daemon(tmp_path, env=env) as daemon:
        daemon.notify.wait_for_line("READY=1", 60)
        time.sleep(4.5)
        pings = [t for t, line in daemon.notify.line_events() if line == "WATCHDOG=1"]
        # Every 1 s (half of 2 s): about four in 4.5 s; generous bounds for a busy machine.
        assert 3 <= len(pings) <= 8, pings


def test_watchdog_for_another_pid_is_ignored(tmp_path: Path):
    env = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    with running_daemon(tmp_path, env=env) as daemon:
        daemon.notify.wait_for_line("READY=1", 60)
        time.sleep(2)
        assert "WATCHDOG=1" not in daemon.notify.lines()


def test_bad_config_stops_start_up_naming_the_keys(tmp_path: Path):
    overrides = {"rooms": {"max_participants": 500, "colour": "red"}}
    with running_daemon(tmp_path, overrides) as daemon:
        code = daemon.proc.wait(60)
        output = "".join(daemon.output)
    assert code == 2
    assert "rooms.max_participants: must be an integer from 1 to 50, got 500" in output
    assert "rooms.colour: unknown key" in output
    assert "READY=1" not in daemon.notify.lines()


def test_press_from_the_console_and_status(tmp_path: Path):
    with running_daemon(tmp_path) as daemon:
        daemon.wait_ready(60)
        result = daemon.cli("press", "join")
        assert result.returncode == 0, result.stderr
        in_call, line = daemon.notify.wait_for_line("STATUS=In call meeting-room", 30)
        assert "1 participants" in line
        assert daemon.cli("press", "join").returncode == 0
        daemon.notify.wait_for_line("STATUS=Press to join", 30, after=in_call)
        assert daemon.stop() == 0


def test_press_without_daemon_is_a_clear_error(tmp_path: Path):
    import subprocess
    import sys

    config = tmp_path / "config.toml"
    config.write_text("")  # a unit that exists but is not running
    argv = [sys.executable, "-m", "appliance.cli", "press", "join", "--data-dir", str(tmp_path)]
    result = subprocess.run(
        [*argv, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "not running" in result.stderr or "no daemon" in result.stderr.lower(), result.stderr
