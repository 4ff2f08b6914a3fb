"""A hub that stops answering without closing anything (as a lost network looks): the field
unit notices from its client's heartbeat, says it is reconnecting and records locally at
once, and is live again when the hub answers; the local recording covers the silence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.daemon import Daemon, running_daemon
from tests.support.waiting import wait_for_sync

LAYERS = [{"name": "main", "width": 320, "height": 180, "bitrate": 300_000}]
SILENCE_S = 25.0


def link(unit: Daemon) -> dict[str, Any]:
    return dict(unit.status().get("link") or {})


def test_a_silent_hub_is_a_lost_link(tmp_path: Path):
    hub_config: dict[str, Any] = {"unit": {"name": "hub", "role": "hub"}}
    with running_daemon(tmp_path, hub_config, name="hub") as hub:
        url = hub.wait_ready(60)
        key = hub.api_key()
        field_config: dict[str, Any] = {
            "unit": {"name": "field-s", "role": "field"},
            "camera": {"backend": "synthetic", "framerate": 15, "layers": LAYERS},
            "audio": {"enabled": False},
            "kiosk": {
                "identity": "field-s",
                "room": "field",
                "remote_url": url,
                "remote_api_key_sid": key["sid"],
                "remote_api_key_secret": key["secret"],
            },
            "field": {"retry_max": 2.0},
            "recordings": {"min_free_mb": 64},
        }
        with running_daemon(tmp_path, field_config, name="field") as field:
            field.wait_ready(60)
            wait_for_sync(lambda: link(field).get("state"), lambda s: s == "live", 60, "live")
            os.kill(hub.proc.pid, signal.SIGSTOP)
            silent_at = time.monotonic()
            try:
                down = wait_for_sync(
                    lambda: link(field),
                    lambda got: got.get("state") == "reconnecting" and got["recording_locally"],
                    timeout=SILENCE_S,
                    what="reconnecting and recording locally while the hub is silent",
                )
                noticed = time.monotonic() - silent_at
                time.sleep(max(0.0, SILENCE_S - (time.monotonic() - silent_at)))
            finally:
                os.kill(hub.proc.pid, signal.SIGCONT)
            answered_at = time.monotonic()
            wait_for_sync(lambda: link(field).get("state"), lambda s: s == "live", 30, "live again")
            down_for = time.monotonic() - silent_at - noticed
            print(f"noticed after {noticed:.1f} s, reconnecting {down_for:.1f} s")
            assert down["since"] > 0 and time.monotonic() - answered_at < 30
            key_f = field.api_key()
            videos = wait_for_sync(
                lambda: [
                    r
                    for r in field.rest("/v1/Recordings", key_f)["recordings"]
                    if r["type"] == "video" and r["status"] == "completed"
                ],
                timeout=30,
                what="the local recording completed",
            )
            path = field.data_dir / "recordings" / f"{videos[0]['sid']}.mkv"
            probe = subprocess.run(
                ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
                 str(path)],
                capture_output=True, text=True, timeout=60, check=True,
            )  # fmt: skip
            duration = float(json.loads(probe.stdout)["format"]["duration"])
            assert duration >= down_for - 2.0, (duration, down_for)
