"""alsa-lib's own error printing stays out of the daemon's output; the parts still say why."""

from __future__ import annotations

import time
from pathlib import Path

from appliance.control.client import status
from tests.support.daemon import running_daemon

MISSING = {"capture_device": "no-such-microphone", "playback_device": "no-such-speaker"}


def test_missing_audio_devices_print_no_alsa_lib_lines(tmp_path: Path):
    with running_daemon(tmp_path, {"audio": MISSING}) as daemon:
        daemon.wait_ready(60)
        degraded = status(daemon.data_dir / "control.sock")["degraded"]
        doctor = daemon.cli("doctor")
        assert daemon.stop() == 0
    time.sleep(0.2)  # the pump thread reads the last lines
    output = "".join(daemon.output)
    assert "ALSA lib" not in output, output
    # The project's own messages: one per part, naming the device and what ALSA offers.
    assert "microphone: ALSA capture device 'no-such-microphone' cannot be opened" in output
    assert "speaker: ALSA playback device 'no-such-speaker' cannot be opened" in output
    assert "no-such-microphone" in degraded["microphone"]
    assert "no-such-speaker" in degraded["speaker"]
    # `doctor` opens the same devices: its table says why, and alsa-lib says nothing.
    assert "ALSA lib" not in doctor.stdout + doctor.stderr
    assert "no-such-microphone' cannot be opened" in doctor.stdout
