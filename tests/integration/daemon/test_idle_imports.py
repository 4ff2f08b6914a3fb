"""An idle kiosk has not loaded the media stack; the first join press loads it and works.

aiortc, PyAV and numpy cost about 45 MB of RSS. The daemon imports them on the first
WebRTC session or join press, not at start. A module list of another process is not
visible, but the shared objects it has loaded are: /proc/<pid>/maps names them.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.daemon import Daemon, running_daemon

# A shared object each package loads on import (aiortc imports pylibsrtp and google_crc32c).
MARKERS = {
    "av": ("/av/_core.", "/libavcodec"),
    "aiortc": ("/pylibsrtp/_binding.", "/google_crc32c/_crc32c."),
    "numpy": ("/_multiarray_umath.",),
}


def loaded(daemon: Daemon) -> set[str]:
    """Which of ``MARKERS`` the daemon process has mapped."""
    maps = Path(f"/proc/{daemon.proc.pid}/maps").read_text()
    return {name for name, needles in MARKERS.items() if any(n in maps for n in needles)}


def test_media_stack_loads_on_the_first_join_press(tmp_path: Path):
    # With encoder "auto", start-up probes the hardware encoder by opening it through PyAV
    # (a capability check, kept): only a unit told to encode in software starts without it.
    config: dict[str, dict[str, object]] = {
        "camera": {"backend": "synthetic", "encoder": "software"},
        "audio": {"enabled": False},
    }
    with running_daemon(tmp_path, config) as daemon:
        daemon.wait_ready(60)
        daemon.wait_state("idle")
        time.sleep(1)  # whatever start-up leaves to the loop has run by now
        assert loaded(daemon) == set()

        assert daemon.cli("press", "join").returncode == 0
        daemon.wait_state("in_call")
        # The markers are real: the call has them all.
        assert loaded(daemon) == set(MARKERS)
        assert daemon.stop() == 0
