"""Two daemons on one data directory: the second refuses before touching anything."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from appliance.data_lock import lock_data_dir
from tests.support.daemon import running_daemon, write_config


def test_second_daemon_refuses_and_leaves_the_first_ones_rooms_alone(tmp_path: Path) -> None:
    with running_daemon(tmp_path) as first:
        first.wait_ready()
        key = first.api_key()
        room = first.rest("/v1/Rooms", key, {"UniqueName": "standup"})
        assert room["status"] == "in-progress"
        db = sorted(p.name for p in first.data_dir.iterdir())

        other_config = tmp_path / "second.toml"
        write_config(other_config, {})
        argv = [sys.executable, "-m", "appliance.cli", "run", "--config", str(other_config)]
        started = time.monotonic()
        second = subprocess.run(
            [*argv, "--data-dir", str(first.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"in use by process {first.proc.pid}" in second.stderr
        assert "ready at" not in second.stdout
        assert time.monotonic() - started < 30

        assert first.rest(f"/v1/Rooms/{room['sid']}", key)["status"] == "in-progress"
        assert sorted(p.name for p in first.data_dir.iterdir()) == db
        assert first.proc.poll() is None
        assert first.stop() == 0
    # The lock went with the process: the directory is free again.
    with lock_data_dir(first.data_dir) as lock:
        assert lock.path.read_text().strip().isdigit()
