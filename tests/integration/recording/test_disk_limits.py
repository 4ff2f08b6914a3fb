"""The disk limits of ``[recordings]``, set through the config as on a unit: recordings and
compositions share one quota, kept current as files come and go; a composition that would
pass the quota is refused, one that grows past it is stopped; recordings are refused when
the disk keeps less than ``min_free_mb`` free, and a running one stops at the quota."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path

import pytest

from appliance.config import parse_settings
from appliance.mapping import recording_settings
from edge_sfu.recording import composer
from edge_sfu.recording.disk import RecordingSettings
from edge_sfu.recording.service import RECORDINGS_DIR
from edge_sfu.rooms.recordings import Composition
from tests.integration.control.receiver import Receiver
from tests.integration.recording.test_compositions import composed
from tests.integration.recording.test_recordings_rest import record_kiosk, wait_recordings
from tests.support.sfu import Unit, start_unit
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(240)

MB = 1024**2
LAYOUT = json.dumps({"grid": {"video_sources": ["*"]}})


def limits(**table: int) -> RecordingSettings:
    """The recorder's limits as the config's ``[recordings]`` table gives them."""
    return recording_settings(parse_settings({"recordings": table}))


def leave(data_dir: Path, quota: int, left: int) -> None:
    """Make the recordings directory hold all but ``left`` bytes of ``quota`` (a sparse
    file stands for what else it holds) before a unit starts on it."""
    directory = data_dir / RECORDINGS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    filler = directory / "older-media"
    with contextlib.suppress(FileNotFoundError):
        filler.unlink()
    used = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    with filler.open("wb") as out:
        out.truncate(quota - used - left)


def directory_size(unit: Unit) -> int:
    return sum(p.stat().st_size for p in unit.context.recordings.directory.iterdir())


async def recorded_room(unit: Unit, name: str, seconds: float) -> str:
    """A room in which the kiosk was recorded for ``seconds``, completed."""
    resp = await unit.client.post(
        "/v1/Rooms",
        data={"UniqueName": name, "RecordParticipantsOnConnect": "true"},
        headers=unit.auth,
    )
    room_sid: str = (await resp.json())["sid"]
    await record_kiosk(unit, name, seconds=seconds)
    await unit.context.rooms.complete_room(room_sid)
    await wait_recordings(unit, room_sid, "completed", 2)
    return room_sid


async def compose(unit: Unit, room_sid: str, callback: str) -> str:
    resp = await unit.client.post(
        "/v1/Compositions",
        data={
            "RoomSid": room_sid,
            "VideoLayout": LAYOUT,
            "AudioSources": "*",
            "Resolution": "1280x720",
            "Format": "mp4",
            "StatusCallback": callback,
        },
        headers=unit.auth,
    )
    assert resp.status == 201, await resp.text()
    sid: str = (await resp.json())["sid"]
    return sid


async def failed(unit: Unit, sid: str, receiver: Receiver) -> tuple[Composition, dict[str, str]]:
    """Wait for ``sid`` to fail; the composition and its ``composition-failed`` callback."""
    await wait_for(
        lambda: unit.context.store.get_composition(sid).status in ("completed", "failed"),
        timeout=120,
        what=f"composition {sid}",
    )
    comp = unit.context.store.get_composition(sid)
    assert comp.status == "failed", comp
    await wait_for(
        lambda: any(
            r.params["StatusCallbackEvent"] == "composition-failed"
            and r.params["CompositionSid"] == sid
            for r in receiver.received
        ),
        what="composition-failed",
    )
    (params,) = [
        r.params
        for r in receiver.received
        if r.params["StatusCallbackEvent"] == "composition-failed"
        and r.params["CompositionSid"] == sid
    ]
    return comp, params


async def test_compositions_share_the_recordings_quota(tmp_path: Path, receiver: Receiver) -> None:
    data = tmp_path / "unit"
    callback = str(receiver.server.make_url("/status")) if receiver.server else ""
    unit = await start_unit(data)
    try:
        room_sid = await recorded_room(unit, "quota", seconds=3.0)
        budget = unit.context.recordings.disk
        before = budget.used
        assert before == directory_size(unit)
        sid = await compose(unit, room_sid, callback)
        await composed(unit, sid)
        size = unit.context.store.get_composition(sid).size
        # a composition made counts at once, a deleted one no more
        assert budget.used == before + size == directory_size(unit)
        resp = await unit.client.delete(f"/v1/Compositions/{sid}", headers=unit.auth)
        assert resp.status == 204
        assert budget.used == before == directory_size(unit)
    finally:
        await unit.client.close()
    quota = limits(quota_mb=16).quota_bytes
    assert quota == 16 * MB

    # 2000 bytes left: the composition is not started
    leave(data, quota, 2000)
    unit = await start_unit(data, recording=limits(quota_mb=16))
    try:
        sid = await compose(unit, room_sid, callback)
        comp, params = await failed(unit, sid, receiver)
        assert "not started" in comp.error and "quota" in comp.error, comp.error
        assert params["ErrorMessage"] == comp.error and params["RoomSid"] == room_sid
        assert not (unit.context.recordings.directory / f"{sid}.mp4").exists()
        assert unit.context.recordings.disk.used == directory_size(unit)
        names = [r.params["StatusCallbackEvent"] for r in receiver.received
                 if r.params.get("CompositionSid") == sid]  # fmt: skip
        assert names == ["composition-enqueued", "composition-failed"]
    finally:
        await unit.client.close()

    # room for half the composition, more than its smallest size: FFmpeg starts, and is
    # stopped at the quota
    assert size // 2 > 4 * composer.AUDIO_BPS["mp4"] / 8 + 16 * 1024
    leave(data, quota, size // 2)
    unit = await start_unit(data, recording=limits(quota_mb=16))
    try:
        sid = await compose(unit, room_sid, callback)
        await wait_for(
            lambda: unit.context.store.get_composition(sid).status != "enqueued",
            what="the composition started",
        )
        comp, params = await failed(unit, sid, receiver)
        assert "stopped" in comp.error and "quota" in comp.error, comp.error
        assert params["ErrorMessage"] == comp.error
        started = [r.params["StatusCallbackEvent"] for r in receiver.received
                   if r.params.get("CompositionSid") == sid]  # fmt: skip
        assert "composition-started" in started and "composition-available" not in started
        assert not (unit.context.recordings.directory / f"{sid}.mp4").exists()
        assert unit.context.recordings.disk.used == directory_size(unit)
        # the recordings it was made from are untouched
        recordings = unit.context.store.find_recordings(_room(room_sid), 10, 0)
        assert {r.status for r in recordings} == {"completed"}
        assert all(unit.context.recordings.path(r).exists() for r in recordings)
    finally:
        await unit.client.close()


def _room(room_sid: str):
    from edge_sfu.store import RecordingFilter

    return RecordingFilter(room_sid=room_sid)


async def test_min_free_refuses_new_recordings(tmp_path: Path, receiver: Receiver) -> None:
    data = tmp_path / "unit"
    data.mkdir()
    free_mb = shutil.disk_usage(data).free // MB
    if free_mb + 1024 > 1_048_576:
        pytest.skip("the disk has more free space than min_free_mb may ask for")
    unit = await start_unit(data, recording=limits(min_free_mb=free_mb + 1024))
    try:
        callback = str(receiver.server.make_url("/status")) if receiver.server else ""
        resp = await unit.client.post(
            "/v1/Rooms",
            data={"UniqueName": "nearly-full", "RecordParticipantsOnConnect": "true",
                  "StatusCallback": callback},
            headers=unit.auth,
        )  # fmt: skip
        room_sid = (await resp.json())["sid"]
        await record_kiosk(unit, "nearly-full", seconds=1.0)
        refused = await wait_recordings(unit, room_sid, "failed", 2)
        assert all(not unit.context.recordings.path(r).exists() for r in refused)
        await wait_for(
            lambda: sum(r.params["StatusCallbackEvent"] == "recording-failed"
                        for r in receiver.received) >= 2,
            what="recording-failed callbacks",
        )  # fmt: skip
        reasons = {r.params["FailureReason"] for r in receiver.received
                   if r.params["StatusCallbackEvent"] == "recording-failed"}  # fmt: skip
        assert reasons == {"the disk is nearly full"}
        room = await unit.client.get(f"/v1/Rooms/{room_sid}", headers=unit.auth)
        assert (await room.json())["status"] == "in-progress"
    finally:
        await unit.client.close()


async def test_a_running_recording_stops_at_the_quota(tmp_path: Path) -> None:
    data = tmp_path / "unit"
    quota = 16 * MB
    left = 60_000
    leave(data, quota, left)
    unit = await start_unit(data, recording=limits(quota_mb=16))
    try:
        resp = await unit.client.post(
            "/v1/Rooms",
            data={"UniqueName": "long", "RecordParticipantsOnConnect": "true"},
            headers=unit.auth,
        )
        room_sid = (await resp.json())["sid"]
        recording = asyncio.ensure_future(record_kiosk(unit, "long", seconds=12.0))
        # the video (testsrc2 at 320x240) passes 60 kB in a few seconds: it stops there,
        # kept as completed, while the kiosk goes on publishing
        stopped = await wait_recordings(unit, room_sid, "completed", 2)
        (video,) = [r for r in stopped if r.kind == "video"]
        assert not recording.done()
        assert video.duration is not None and video.duration < 10
        assert unit.context.recordings.path(video).stat().st_size == video.size
        # at most one tick of media past the limit
        assert video.size < left + 200_000
        await recording
        room = await unit.client.get(f"/v1/Rooms/{room_sid}", headers=unit.auth)
        assert (await room.json())["status"] == "in-progress"
    finally:
        await unit.client.close()
