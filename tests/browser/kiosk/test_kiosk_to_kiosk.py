"""Two meeting rooms talk: kiosk A joins kiosk B's room on B's unit; media flows both ways.

Two real daemons on loopback, each on simulated hardware with its own tone (A 440 Hz, B
880 Hz) and its own speaker file. A reaches B through B's token endpoint with an API key
made by B's console, then the Python client; B's kiosk is in its own room in-process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.support.daemon import Daemon, running_daemon
from tests.support.waiting import wait_for_sync

from .audio_files import alsa_env, dominant_frequency, kiosk_config, loud_tail, write_raw_tone

LAYERS = [{"name": "main", "width": 320, "height": 180, "bitrate": 300_000}]


def audio_config(tmp: Path, name: str, freq: float) -> dict[str, dict[str, object]]:
    tone = tmp / f"{name}-mic.raw"
    write_raw_tone(tone, freq, 240)
    return kiosk_config(LAYERS, tone, tmp / f"{name}-speaker.raw")


def participants(daemon: Daemon) -> dict[str, list[dict[str, Any]]]:
    rooms = daemon.status()["rooms"]
    return {p["identity"]: p["tracks"] for room in rooms for p in room["participants"]}


def test_kiosk_joins_another_units_room_media_both_ways(tmp_path: Path):
    env = alsa_env(tmp_path)
    b_config = audio_config(tmp_path, "b", 880.0)
    b_config["kiosk"] = {"identity": "room-b", "room": "design-review"}
    with running_daemon(tmp_path, b_config, env=env, name="b") as b:
        b_url = b.wait_ready(60)
        key = json.loads(b.cli("keys", "create", "--name", "room-a", "--json").stdout)
        a_config = audio_config(tmp_path, "a", 440.0)
        a_config["kiosk"] = {
            "identity": "room-a",
            "room": "design-review",
            "remote_url": b_url,
            "remote_api_key_sid": key["sid"],
            "remote_api_key_secret": key["secret"],
        }
        with running_daemon(tmp_path, a_config, env=env, name="a") as a:
            a.wait_ready(60)
            assert b.cli("press", "join").returncode == 0
            assert a.cli("press", "join").returncode == 0
            try:
                wait_for_sync(
                    lambda: a.status()["state"] == "in_call", timeout=60, what="kiosk A in B's room"
                )
            except AssertionError:
                raise AssertionError(a.status()["status"] + "".join(a.output)[-3000:]) from None
            wait_for_sync(
                lambda: {"room-a", "room-b"} <= set(participants(b)),
                timeout=30,
                what="both kiosks in B's room",
            )

            # A's camera and microphone arrive at B's SFU; both are published there.
            def a_tracks_flow() -> bool:
                tracks = participants(b).get("room-a", [])
                return {t["kind"] for t in tracks if t["bitrate_kbps"] > 5} >= {"audio", "video"}

            wait_for_sync(a_tracks_flow, timeout=60, what="A's audio and video flowing at B")
            wait_for_sync(
                lambda: a.status()["media"]["camera_layers"]["main"]["frames"] > 30,
                timeout=30,
                what="A encoding",
            )

            # Each speaker plays the other room's tone.
            for listener in (b, a):
                speaker = (
                    listener.data_dir.parent.parent / f"{'b' if listener is b else 'a'}-speaker.raw"
                )
                wait_for_sync(
                    lambda s=speaker: s.exists() and s.stat().st_size > 48_000 * 2 * 4,
                    timeout=60,
                    what="speaker",
                )
            time.sleep(3)
            for name, other_freq in (("b", 440.0), ("a", 880.0)):
                freq, rms = dominant_frequency(loud_tail(tmp_path / f"{name}-speaker.raw", 1.0))
                assert abs(freq - other_freq) < 15, (name, freq, rms)
                assert rms > 300, (name, rms)

            # A leaves: B's room no longer has it; A is idle again.
            assert a.cli("press", "join").returncode == 0
            wait_for_sync(
                lambda: "room-a" not in participants(b), timeout=30, what="A gone from B's room"
            )
            wait_for_sync(lambda: a.status()["state"] == "idle", timeout=30, what="A idle")
