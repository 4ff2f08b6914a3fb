"""``kill -9`` the real daemon while it records: each file plays up to within 2 s of the kill
without repair, and after a restart the recordings are ``completed`` with their callbacks."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from edge_sfu.client import connect
from edge_sfu.recording.mkv import read_blocks
from edge_sfu.store import RoomFilter, Store
from tests.integration.control.receiver import Receiver
from tests.support.daemon import running_daemon
from tests.support.media import H264TestSource, ToneAudioTrack
from tests.support.waiting import wait_for, wait_for_sync

pytestmark = pytest.mark.timeout(240)

RECORD_SECONDS = 6.0


def ffprobe_packets(path: Path) -> list[float]:
    """Presentation times of every packet ffprobe reads from ``path`` (no repair first)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "packet=pts_time", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [float(p["pts_time"]) for p in json.loads(out)["packets"]]


def decodes(path: Path) -> bool:
    done = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True)  # fmt: skip
    return done.returncode == 0


async def test_kill_9_while_recording_then_restart(tmp_path: Path) -> None:
    receiver = Receiver()
    callback = await receiver.start()
    overrides: dict[str, dict[str, object]] = {
        "unit": {"role": "hub"},
        "rooms": {"record_participants_on_connect": True, "status_callback": callback},
    }
    try:
        with running_daemon(tmp_path, overrides) as daemon:
            url = await asyncio.to_thread(daemon.wait_ready)
            made = await asyncio.to_thread(
                daemon.cli, "token", "--identity", "field", "--room", "crash"
            )
            token = made.stdout.strip()
            room = await connect(url.replace("http", "ws") + "/v1/signaling", token)
            try:
                camera = await room.publish_encoded_video("camera")
                source = H264TestSource(camera, 320, 240, fps=15)
                await room.publish_track(ToneAudioTrack(), "mic")
                started = time.monotonic()
                recordings = daemon.data_dir / "recordings"
                await wait_for(lambda: len(list(recordings.glob("RT*"))) == 2, what="2 files")
                await asyncio.sleep(RECORD_SECONDS)
                daemon.proc.kill()  # SIGKILL: nothing is flushed or closed
                killed_at = time.time()
                killed_after = time.monotonic() - started
                await asyncio.to_thread(daemon.proc.wait, 10)
                await source.close()
            finally:
                await room.close()
            files = sorted(recordings.glob("RT*"))
            cut = {path: path.read_bytes() for path in files}
            # the files' times count from the room's start, as the daemon stored it
            store = Store.in_data_dir(daemon.data_dir)
            try:
                (crashed,) = store.find_rooms(RoomFilter(unique_name="crash"), 2, 0)
            finally:
                store.close()
            kill_in_room = killed_at - crashed.date_created.timestamp()

        # as the kill left them: readable, playing to within 2 s of the kill (the last
        # packet's time and the kill's, both from the room's start)
        assert {p.suffix for p in files} == {".mka", ".mkv"}
        for path in files:
            times = ffprobe_packets(path)
            assert times, path
            assert times[-1] >= kill_in_room - 2.0, (path, times[-1], kill_in_room)
            assert times[-1] <= kill_in_room + 0.5, (path, times[-1], kill_in_room)
            assert decodes(path), path

        with running_daemon(tmp_path, overrides) as daemon:
            await asyncio.to_thread(daemon.wait_ready)
            key = await asyncio.to_thread(daemon.api_key)
            listed = await asyncio.to_thread(daemon.rest, "/v1/Recordings", key)
            recs = listed["recordings"]
            assert {r["status"] for r in recs} == {"completed"} and len(recs) == 2
            for rec in recs:
                path = recordings / f"{rec['sid']}.{rec['container_format']}"
                assert rec["size"] == path.stat().st_size
                # closed properly: every complete cluster the kill left is kept as it was
                left = tmp_path / f"cut{path.suffix}"
                left.write_bytes(cut[path])
                assert read_blocks(path) == read_blocks(left) != []
                assert abs(rec["duration"] - killed_after) <= 2.5
                info = subprocess.run(
                    ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
                     str(path)], capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                assert float(json.loads(info)["format"]["duration"]) > killed_after - 2.5
            await asyncio.to_thread(
                wait_for_sync,
                lambda: sum(
                    r.params["StatusCallbackEvent"] == "recording-completed"
                    for r in receiver.received
                ),
                lambda n: n >= 2,
                30,
                "recording-completed callbacks",
            )
            completed = {
                r.params["RecordingSid"]
                for r in receiver.received
                if r.params["StatusCallbackEvent"] == "recording-completed"
            }
            assert completed == {r["sid"] for r in recs}
    finally:
        await receiver.close()
