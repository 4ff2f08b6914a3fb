"""A kiosk removed on purpose stays out; a completed room ends the call without retries."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

from appliance.control.client import status
from tests.support.daemon import Daemon, running_daemon


def rest_post(daemon: Daemon, path: str, key: dict[str, str], data: dict[str, str]) -> dict:
    request = urllib.request.Request(daemon.url + path, data=urllib.parse.urlencode(data).encode())
    auth = base64.b64encode(f"{key['sid']}:{key['secret']}".encode()).decode()
    request.add_header("Authorization", f"Basic {auth}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def state_of(daemon: Daemon) -> str:
    return status(daemon.data_dir / "control.sock")["state"]


def test_kicked_or_room_completed_goes_idle_without_retrying(tmp_path: Path):
    with running_daemon(tmp_path, {"audio": {"enabled": False}}) as daemon:
        daemon.wait_ready(60)
        key = json.loads(daemon.cli("keys", "create", "--name", "backend", "--json").stdout)

        assert daemon.cli("press", "join").returncode == 0
        daemon.wait_state("in_call")
        room = status(daemon.data_dir / "control.sock")["rooms"][0]
        kicked = rest_post(
            daemon, f"/v1/Rooms/{room['sid']}/Participants/kiosk", key, {"Status": "disconnected"}
        )
        assert kicked["status"] == "disconnected"
        daemon.wait_state("idle")
        time.sleep(3)  # an automatic rejoin (the error path) would have started by now
        assert state_of(daemon) == "idle"

        assert daemon.cli("press", "join").returncode == 0
        daemon.wait_state("in_call")
        room = status(daemon.data_dir / "control.sock")["rooms"][0]
        rest_post(daemon, f"/v1/Rooms/{room['sid']}", key, {"Status": "completed"})
        daemon.wait_state("idle")
        time.sleep(3)
        assert state_of(daemon) == "idle"
        assert daemon.stop() == 0
