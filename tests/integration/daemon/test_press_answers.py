"""`edge-appliance press` says whether the daemon acted on the press, and the state it is in."""

from __future__ import annotations

from pathlib import Path

from tests.support.daemon import running_daemon


def test_press_says_acted_on_or_ignored_and_the_state(tmp_path: Path):
    overrides = {"audio": {"enabled": False}, "kiosk": {"room": "standup"}}
    with running_daemon(tmp_path, overrides) as daemon:
        daemon.wait_ready(60)
        # Mute means nothing while idle: the kiosk ignores it and stays idle.
        mute = daemon.cli("press", "mute")
        assert mute.returncode == 0, mute.stderr
        assert mute.stdout.strip() == (
            "mute: ignored in this state; now idle: Press to join standup (without audio)"
        )
        join = daemon.cli("press", "join")
        assert join.returncode == 0, join.stderr
        assert join.stdout.startswith("join: acted on; now joining: Joining standup"), join.stdout
        assert daemon.stop() == 0
