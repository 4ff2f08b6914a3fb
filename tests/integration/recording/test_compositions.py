"""Compositions of a recorded 3-participant room: each participant publishes a picture of one
known colour and a tone of its own; the composed files are decoded and checked cell by cell
and frequency by frequency. twilio-python creates, lists, fetches and deletes them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from edge_sfu.media import H264, OPUS
from edge_sfu.signaling import SIGNALING
from tests.integration.control.receiver import Receiver
from tests.integration.control.twilio_adapter import LocalVideoHttpClient
from tests.support.media import H264TestSource, OpusMicrophone
from tests.support.sfu import Unit, start_unit
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(300)

PEOPLE = {  # identity: (colour, RGB, tone in Hz), in the order they join
    "red": ("color=c=red", (255, 0, 0), 440.0),
    "green": ("color=c=0x00FF00", (0, 255, 0), 1000.0),
    "blue": ("color=c=blue", (0, 0, 255), 2500.0),
}


@pytest.fixture
async def recorded(tmp_path: Path) -> AsyncIterator[tuple[Unit, str]]:
    """A unit with a completed room in which three participants were recorded for 4 s."""
    unit = await start_unit(tmp_path)
    try:
        resp = await unit.client.post(
            "/v1/Rooms",
            data={"UniqueName": "trio", "RecordParticipantsOnConnect": "true"},
            headers=unit.auth,
        )
        room_sid = (await resp.json())["sid"]
        signaling = unit.client.app[SIGNALING]
        running = []
        for identity, (lavfi, _, tone) in PEOPLE.items():
            member = await signaling.connect_local("trio", identity)
            camera = await member.publish("camera", H264)
            mic = await member.publish("microphone", OPUS)
            running += [H264TestSource(camera, 320, 240, lavfi=lavfi), OpusMicrophone(mic, tone)]
            await asyncio.sleep(0.5)  # they join in order
        await asyncio.sleep(3.0)
        for source in running:
            await source.close()
        await unit.context.rooms.complete_room(room_sid)
        await wait_for(
            lambda: (
                not unit.context.recordings.is_recording(room_sid)
                and all(
                    r.status != "processing"
                    for r in unit.context.store.find_recordings(_room_filter(room_sid), 50, 0)
                )
            ),
            what="recordings finished",
        )
        yield unit, room_sid
    finally:
        await unit.client.close()


def _room_filter(room_sid: str):
    from edge_sfu.store import RecordingFilter

    return RecordingFilter(room_sid=room_sid)


def twilio(unit: Unit) -> Client:
    return Client(
        unit.key.sid,
        unit.key.secret,
        unit.identity.account_sid,
        http_client=LocalVideoHttpClient(unit.base),
    )


async def composed(unit: Unit, sid: str) -> Path:
    """Wait for a composition, then download its media through the signed URL."""
    await wait_for(
        lambda: unit.context.store.get_composition(sid).status in ("completed", "failed"),
        timeout=120,
        what=f"composition {sid}",
    )
    comp = unit.context.store.get_composition(sid)
    assert comp.status == "completed", comp.error
    resp = await unit.client.get(
        f"/v1/Compositions/{sid}/Media", headers=unit.auth, allow_redirects=False
    )
    assert resp.status == 302
    media = await unit.client.get(resp.headers["Location"][len(unit.base) :])
    assert media.status == 200
    path = unit.data_dir / f"download.{comp.format}"
    path.write_bytes(await media.read())
    return path


def frame_at(path: Path, seconds: float) -> np.ndarray:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= seconds:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame at {seconds} s")


def colour(image: np.ndarray, x: int, y: int) -> tuple[int, int, int]:
    patch = image[y - 4 : y + 4, x - 4 : x + 4].reshape(-1, 3).mean(axis=0)
    return tuple(int(v) for v in patch)


def near(got: tuple[int, int, int], want: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(got, want, strict=True))


def tones(path: Path) -> list[float]:
    """The strongest frequencies of the audio track (mono mix of the whole file)."""
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray().astype(np.float64).mean(axis=0) for f in container.decode(audio=0)]
        rate = container.streams.audio[0].rate
    samples = np.concatenate(chunks)
    spectrum = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return [
        float(freqs[np.argmax(spectrum * (np.abs(freqs - f) < 50))]) for f in (440, 1000, 2500)
    ] + [
        float(spectrum[np.abs(freqs - f) < 20].max() / np.median(spectrum))
        for f in (440, 1000, 2500)
    ]


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return {
            "codec": video.codec_context.name,
            "size": (video.codec_context.width, video.codec_context.height),
            "audio": [s.codec_context.name for s in container.streams.audio],
            "duration": float(container.duration / 1e6) if container.duration else 0.0,
        }


GRID = json.dumps({"grid": {"video_sources": ["*"]}})


async def test_grid_composition_mp4_and_webm(recorded) -> None:
    unit, room_sid = recorded
    client = twilio(unit)
    receiver = Receiver()
    callback = await receiver.start()
    try:
        created = await asyncio.to_thread(
            client.video.v1.compositions.create,
            room_sid=room_sid,
            video_layout={"grid": {"video_sources": ["*"]}},
            audio_sources=["*"],
            resolution="640x480",
            format="mp4",
            status_callback=callback,
        )
        assert created.sid.startswith("CJ") and created.status in ("enqueued", "processing")
        mp4 = await composed(unit, created.sid)
        info = probe(mp4)
        assert info["codec"] == "h264" and info["size"] == (640, 480) and info["audio"] == ["aac"]
        assert 3.0 <= info["duration"] <= 6.0
        # red joined first, then green, then blue: a 2x2 grid with them in reading order
        image = frame_at(mp4, info["duration"] - 1.0)
        cells = [(160, 120), (480, 120), (160, 360)]
        for (x, y), (_, rgb, _) in zip(cells, PEOPLE.values(), strict=True):
            assert near(colour(image, x, y), rgb), (x, y, colour(image, x, y))
        assert near(colour(image, 480, 360), (0, 0, 0))  # the fourth cell is empty
        # the audio is a mix of all three tones
        peaks = tones(mp4)
        for want, got in zip((440, 1000, 2500), peaks[:3], strict=True):
            assert abs(got - want) < 15, peaks
        assert min(peaks[3:]) > 20, peaks

        fetched = await asyncio.to_thread(client.video.v1.compositions(created.sid).fetch)
        assert fetched.status == "completed" and fetched.format == "mp4"
        assert fetched.resolution == "640x480" and fetched.size > 0 and fetched.duration >= 3
        assert fetched.video_layout["grid"]["video_sources"] == ["*"]

        await receiver.wait_for(3)
        events = [r.params["StatusCallbackEvent"] for r in receiver.received]
        assert events[0] == "composition-enqueued" and "composition-started" in events
        await wait_for(lambda: "composition-available" in
                       [r.params["StatusCallbackEvent"] for r in receiver.received])  # fmt: skip

        webm_comp = await asyncio.to_thread(
            client.video.v1.compositions.create,
            room_sid=room_sid,
            video_layout={"grid": {"video_sources": ["camera"]}},
            audio_sources=["microphone"],
            resolution="320x240",
            format="webm",
        )
        webm = await composed(unit, webm_comp.sid)
        info = probe(webm)
        assert info["codec"] == "vp8" and info["size"] == (320, 240) and info["audio"] == ["opus"]
        image = frame_at(webm, info["duration"] - 1.0)
        for (x, y), (_, rgb, _) in zip(
            [(80, 60), (240, 60), (80, 180)], PEOPLE.values(), strict=True
        ):
            assert near(colour(image, x, y), rgb), (x, y, colour(image, x, y))
        # its audio is the same mix of all three tones
        peaks = tones(webm)
        for want, got in zip((440, 1000, 2500), peaks[:3], strict=True):
            assert abs(got - want) < 15, peaks
        assert min(peaks[3:]) > 20, peaks

        listed = await asyncio.to_thread(client.video.v1.compositions.list)
        assert {c.sid for c in listed} == {created.sid, webm_comp.sid}
        done = await asyncio.to_thread(
            client.video.v1.compositions.list, status="completed", room_sid=room_sid
        )
        assert len(done) == 2
        assert await asyncio.to_thread(client.video.v1.compositions(webm_comp.sid).delete)
        gone = await asyncio.to_thread(client.video.v1.compositions(webm_comp.sid).fetch)
        assert gone.status == "deleted"
        assert not (unit.context.recordings.directory / f"{webm_comp.sid}.webm").exists()
    finally:
        await receiver.close()


async def test_reuse_and_cells_excluded(recorded) -> None:
    unit, room_sid = recorded
    client = twilio(unit)
    # two cells side by side; the newest sources win them
    newest = await asyncio.to_thread(
        client.video.v1.compositions.create,
        room_sid=room_sid,
        video_layout={
            "r": {"video_sources": ["*"], "max_columns": 2, "max_rows": 1, "reuse": "show_newest"}
        },
        resolution="640x240",
        format="mp4",
    )
    path = await composed(unit, newest.sid)
    image = frame_at(path, probe(path)["duration"] - 1.0)
    assert near(colour(image, 160, 120), PEOPLE["green"][1]), colour(image, 160, 120)
    assert near(colour(image, 480, 120), PEOPLE["blue"][1]), colour(image, 480, 120)
    # a 2x2 grid without its first cell: red, green, blue fill cells 1, 2 and 3
    excluded = await asyncio.to_thread(
        client.video.v1.compositions.create,
        room_sid=room_sid,
        video_layout={
            "r": {"video_sources": ["*"], "max_columns": 2, "max_rows": 2, "cells_excluded": [0]}
        },
        resolution="640x480",
        format="mp4",
    )
    path = await composed(unit, excluded.sid)
    image = frame_at(path, probe(path)["duration"] - 1.0)
    assert near(colour(image, 160, 120), (0, 0, 0))
    for (x, y), (_, rgb, _) in zip(
        [(480, 120), (160, 360), (480, 360)], PEOPLE.values(), strict=True
    ):
        assert near(colour(image, x, y), rgb), (x, y, colour(image, x, y))


async def test_bad_compositions_get_twilio_errors(recorded) -> None:
    unit, room_sid = recorded
    bad = [
        ({"VideoLayout": "{not json"}, 400),
        ({"VideoLayout": json.dumps({"g": {"video_sources": "camera"}})}, 400),
        ({"VideoLayout": json.dumps({"g": {"max_columns": "two", "video_sources": ["*"]}})}, 400),
        ({"VideoLayout": json.dumps({"g": {"video_sources": ["*"], "reuse": "sometimes"}})}, 400),
        ({"VideoLayout": json.dumps({"g": {"video_sources": ["*"], "depth": 3}})}, 400),
        (
            {
                "VideoLayout": json.dumps({"g": {"video_sources": ["*"], "cells_excluded": [0]}}),
                "Resolution": "16x16",
            },
            201,
        ),
        ({"VideoLayout": GRID, "Resolution": "4096x4096"}, 400),
        ({"VideoLayout": GRID, "Resolution": "1280x1280"}, 400),
        ({"VideoLayout": GRID, "Resolution": "wide"}, 400),
        ({"VideoLayout": GRID, "Format": "avi"}, 400),
        ({"VideoLayout": json.dumps({"g": {"video_sources": ["nobody*"]}})}, 400),
        ({"AudioSources": "nobody"}, 400),
        ({}, 400),
    ]
    for extra, status in bad:
        resp = await unit.client.post(
            "/v1/Compositions", data={"RoomSid": room_sid, **extra}, headers=unit.auth
        )
        body = await resp.json()
        assert resp.status == status, (extra, body)
        if status == 400:
            assert body["code"] == 20001 and body["more_info"].endswith("20001"), body
    missing = await unit.client.post(
        "/v1/Compositions", data={"RoomSid": "RM" + "0" * 32, "VideoLayout": GRID},
        headers=unit.auth,
    )  # fmt: skip
    assert missing.status == 404
    # a room in progress cannot be composed yet
    live = await unit.client.post("/v1/Rooms", data={"UniqueName": "live"}, headers=unit.auth)
    resp = await unit.client.post(
        "/v1/Compositions",
        data={"RoomSid": (await live.json())["sid"], "VideoLayout": GRID},
        headers=unit.auth,
    )
    assert resp.status == 400
    client = twilio(unit)
    with pytest.raises(TwilioRestException) as refused:
        await asyncio.to_thread(
            client.video.v1.compositions.create,
            room_sid=room_sid,
            video_layout={"g": {"video_sources": ["*"], "width": 5000}},
        )
    assert refused.value.status == 400 and refused.value.code == 20001


async def test_a_composition_hook_composes_every_room_that_ends(tmp_path: Path) -> None:
    from tests.integration.recording.test_recordings_rest import record_kiosk

    unit = await start_unit(tmp_path / "hooked")
    receiver = Receiver()
    callback = await receiver.start()
    try:
        client = twilio(unit)
        hook = await asyncio.to_thread(
            client.video.v1.composition_hooks.create,
            friendly_name="everything",
            video_layout={"grid": {"video_sources": ["*"]}},
            audio_sources=["*"],
            format="mp4",
            resolution="320x240",
        )
        assert hook.sid.startswith("HK") and hook.enabled
        disabled = await asyncio.to_thread(
            client.video.v1.composition_hooks.create,
            friendly_name="off",
            enabled=False,
            audio_sources=["*"],
        )
        hooks = await asyncio.to_thread(client.video.v1.composition_hooks.list, enabled=True)
        assert [h.sid for h in hooks] == [hook.sid]
        # a hook whose sources match nothing in the room: it says so when the room ends
        empty = await asyncio.to_thread(
            client.video.v1.composition_hooks.create,
            friendly_name="nobody",
            video_layout={"g": {"video_sources": ["nobody"]}},
            audio_sources=["nobody"],
            status_callback=callback,
        )
        resp = await unit.client.post(
            "/v1/Rooms",
            data={"UniqueName": "hooked", "RecordParticipantsOnConnect": "true"},
            headers=unit.auth,
        )
        room_sid = (await resp.json())["sid"]
        await record_kiosk(unit, "hooked", seconds=2.0)
        await unit.context.rooms.complete_room(room_sid)
        await wait_for(
            lambda: unit.context.store.find_compositions(_comp_filter(room_sid), 10, 0),
            timeout=40,
            what="a composition made by the hook",
        )
        (comp,) = unit.context.store.find_compositions(_comp_filter(room_sid), 10, 0)
        await wait_for(
            lambda: any(
                r.params["StatusCallbackEvent"] == "composition-hook-failed"
                for r in receiver.received
            ),
            what="composition-hook-failed",
        )
        (failed,) = [r.params for r in receiver.received]
        assert failed["StatusCallbackEvent"] == "composition-hook-failed"
        assert failed["CompositionHookSid"] == empty.sid and failed["RoomSid"] == room_sid
        assert "match" in failed["ErrorMessage"], failed
        assert failed["AccountSid"] == unit.identity.account_sid
        path = await composed(unit, comp.sid)
        assert probe(path)["size"] == (320, 240)
        assert await asyncio.to_thread(client.video.v1.composition_hooks(disabled.sid).delete)
        with pytest.raises(TwilioRestException):
            await asyncio.to_thread(client.video.v1.composition_hooks(disabled.sid).fetch)
        bad = await unit.client.post(
            "/v1/CompositionHooks",
            data={"FriendlyName": "bad", "VideoLayout": "[]"},
            headers=unit.auth,
        )
        assert bad.status == 400 and (await bad.json())["code"] == 20001
    finally:
        await unit.client.close()
        await receiver.close()


def _comp_filter(room_sid: str):
    from edge_sfu.store import CompositionFilter

    return CompositionFilter(room_sid=room_sid)


def _events(receiver: Receiver, sid: str) -> list[dict[str, str]]:
    return [r.params for r in receiver.received if r.params.get("CompositionSid") == sid]


async def test_progress_callbacks_then_a_damaged_recording_fails(recorded) -> None:
    unit, room_sid = recorded
    receiver = Receiver()
    callback = await receiver.start()
    try:
        client = twilio(unit)
        made = await asyncio.to_thread(
            client.video.v1.compositions.create,
            room_sid=room_sid,
            video_layout={"grid": {"video_sources": ["*"]}},
            audio_sources=["*"],
            resolution="1280x720",
            format="mp4",
            status_callback=callback,
        )
        await composed(unit, made.sid)
        await wait_for(
            lambda: (
                "composition-available"
                in [p["StatusCallbackEvent"] for p in _events(receiver, made.sid)]
            ),
            what="composition-available",
        )
        events = _events(receiver, made.sid)
        names = [p["StatusCallbackEvent"] for p in events]
        progress = [p for p in events if p["StatusCallbackEvent"] == "composition-progress"]
        # in order: enqueued, started, progress every 10 %, available
        assert names[:2] == ["composition-enqueued", "composition-started"], names
        assert names[-1] == "composition-available", names
        assert names[2:-1] == ["composition-progress"] * len(progress) and progress, names
        done = [int(p["PercentageDone"]) for p in progress]
        assert done == sorted(set(done)) and all(10 <= d <= 90 and d % 10 == 0 for d in done)
        remaining = [p["SecondsRemaining"] for p in progress]
        assert all(r.isdigit() for r in remaining), remaining
        for p in events:
            assert p["RoomSid"] == room_sid and p["AccountSid"] == unit.identity.account_sid

        # a recording's file damaged on the disk: the composition fails, and says so
        video = next(
            r for r in unit.context.store.find_recordings(_room_filter(room_sid), 50, 0)
            if r.kind == "video"
        )  # fmt: skip
        unit.context.recordings.path(video).write_bytes(b"not matroska at all")
        broken = await asyncio.to_thread(
            client.video.v1.compositions.create,
            room_sid=room_sid,
            video_layout={"grid": {"video_sources": ["*"]}},
            format="mp4",
            status_callback=callback,
        )
        await wait_for(
            lambda: (
                "composition-failed"
                in [p["StatusCallbackEvent"] for p in _events(receiver, broken.sid)]
            ),
            timeout=60,
            what="composition-failed",
        )
        comp = unit.context.store.get_composition(broken.sid)
        assert comp.status == "failed" and comp.error
        (failed,) = [p for p in _events(receiver, broken.sid)
                     if p["StatusCallbackEvent"] == "composition-failed"]  # fmt: skip
        assert failed["ErrorMessage"] == comp.error and failed["RoomSid"] == room_sid
        names = [p["StatusCallbackEvent"] for p in _events(receiver, broken.sid)]
        assert "composition-available" not in names
        fetched = await asyncio.to_thread(client.video.v1.compositions(broken.sid).fetch)
        assert fetched.status == "failed"
    finally:
        await receiver.close()


async def test_compositions_left_by_a_restart_are_made_again(recorded) -> None:
    from edge_sfu.store import Store

    unit, room_sid = recorded
    receiver = Receiver()
    callback = await receiver.start()
    again: Unit | None = None
    try:
        sids = []
        for resolution, fmt in (("1280x720", "mp4"), ("640x480", "webm")):
            resp = await unit.client.post(
                "/v1/Compositions",
                data={"RoomSid": room_sid, "VideoLayout": GRID, "AudioSources": "*",
                      "Resolution": resolution, "Format": fmt, "StatusCallback": callback},
                headers=unit.auth,
            )  # fmt: skip
            sids.append((await resp.json())["sid"])
        first, second = sids
        await wait_for(
            lambda: unit.context.store.get_composition(first).status == "processing",
            what="the first composition processing",
        )
        await unit.client.close()  # the daemon stops while it composes
        store = Store.in_data_dir(unit.data_dir)
        try:
            left = [store.get_composition(sid).status for sid in sids]
        finally:
            store.close()
        assert left == ["processing", "enqueued"]

        again = await start_unit(unit.data_dir)
        for sid in sids:
            path = await composed(again, sid)
            assert probe(path)["duration"] >= 3.0
        assert probe(path)["codec"] == "vp8"
        budget = again.context.recordings.disk
        assert budget.used == sum(p.stat().st_size for p in budget.directory.iterdir())
        await wait_for(
            lambda: all(
                "composition-available"
                in [p["StatusCallbackEvent"] for p in _events(receiver, sid)]
                for sid in sids
            ),
            what="composition-available after the restart",
        )
        names = [p["StatusCallbackEvent"] for p in _events(receiver, first)]
        assert names.count("composition-started") == 2 and names[-1] == "composition-available"
        names = [p["StatusCallbackEvent"] for p in _events(receiver, second)]
        assert names.count("composition-started") == 1 and names[-1] == "composition-available"
    finally:
        if again is not None:
            await again.client.close()
        await receiver.close()


def _tracks(unit: Unit, room_sid: str) -> dict[tuple[str, str], object]:
    """The room's recordings by (participant identity, kind)."""
    store = unit.context.store
    return {
        (store.get_participant(room_sid, r.participant_sid).identity, r.kind): r
        for r in store.find_recordings(_room_filter(room_sid), 50, 0)
    }


async def _make(unit: Unit, room_sid: str, **params: str) -> Path:
    resp = await unit.client.post(
        "/v1/Compositions", data={"RoomSid": room_sid, **params}, headers=unit.auth
    )
    body = await resp.json()
    assert resp.status == 201, body
    path = await composed(unit, body["sid"])
    return path.rename(path.with_name(f"{body['sid']}-{path.name}"))  # the next download's


async def test_regions_by_position_size_and_z(recorded) -> None:
    unit, room_sid = recorded
    tracks = _tracks(unit, room_sid)
    red, blue = tracks[("red", "video")].source_sid, tracks[("blue", "video")].source_sid
    for pip_z, pip_shows in ((2, "blue"), (0, "red")):
        layout = {
            "main": {"x_pos": 0, "y_pos": 0, "width": 640, "height": 480, "z_pos": 1,
                     "video_sources": [red]},
            "pip": {"x_pos": 400, "y_pos": 300, "width": 200, "height": 150, "z_pos": pip_z,
                    "video_sources": [blue]},
        }  # fmt: skip
        path = await _make(
            unit, room_sid, VideoLayout=json.dumps(layout), Resolution="640x480", Format="mp4"
        )
        image = frame_at(path, probe(path)["duration"] - 1.0)
        # red fills the canvas; blue is its picture-in-picture, above red or under it
        for x, y in ((100, 100), (620, 460), (380, 290), (320, 240)):
            assert near(colour(image, x, y), PEOPLE["red"][1]), (pip_z, x, y)
        for x, y in ((420, 320), (500, 375), (580, 430)):
            assert near(colour(image, x, y), PEOPLE[pip_shows][1]), (pip_z, x, y)


async def test_trim_false_starts_at_the_room_start(tmp_path: Path) -> None:
    from tests.integration.recording.test_recordings_rest import record_kiosk, wait_recordings

    unit = await start_unit(tmp_path / "late")
    try:
        resp = await unit.client.post(
            "/v1/Rooms",
            data={"UniqueName": "late", "RecordParticipantsOnConnect": "true"},
            headers=unit.auth,
        )
        room_sid = (await resp.json())["sid"]
        await asyncio.sleep(1.5)  # nobody publishes in the room's first 1.5 s
        await record_kiosk(unit, "late", seconds=2.0)
        await unit.context.rooms.complete_room(room_sid)
        recordings = await wait_recordings(unit, room_sid, "completed", 2)
        first_ms = min(r.offset for r in recordings)
        assert first_ms >= 1500
        params = {"VideoLayout": GRID, "AudioSources": "*", "Resolution": "320x240"}
        trimmed = await _make(unit, room_sid, Format="mp4", **params)
        whole = await _make(unit, room_sid, Format="mp4", Trim="false", **params)
        # trimmed: from the first frame; whole: from the room's start, black until the kiosk
        assert _brightness(frame_at(trimmed, 0.0)) > 40
        assert _brightness(frame_at(whole, 0.0)) < 5
        assert _brightness(frame_at(whole, first_ms / 1000 - 0.3)) < 5
        assert _brightness(frame_at(whole, first_ms / 1000 + 0.3)) > 40
        # longer by the wait at the start (and up to the room's end, in whole seconds)
        longer = probe(whole)["duration"] - probe(trimmed)["duration"]
        assert first_ms / 1000 - 0.3 < longer < first_ms / 1000 + 1.0, (longer, first_ms)
    finally:
        await unit.client.close()


def _brightness(image: np.ndarray) -> float:
    return float(image.mean())


async def test_audio_sources_excluded(recorded) -> None:
    unit, room_sid = recorded
    green_mic = _tracks(unit, room_sid)[("green", "audio")].source_sid
    for fmt in ("mp4", "webm"):
        path = await _make(
            unit, room_sid, AudioSources="*", AudioSourcesExcluded=green_mic, Format=fmt,
            Resolution="320x240", VideoLayout=GRID,
        )  # fmt: skip
        peaks = tones(path)
        # 440 Hz and 2500 Hz are in the mix; green's 1000 Hz is not
        assert abs(peaks[0] - 440) < 15 and abs(peaks[2] - 2500) < 15, (fmt, peaks)
        assert peaks[3] > 20 and peaks[5] > 20, (fmt, peaks)
        assert peaks[4] * 100 < min(peaks[3], peaks[5]), (fmt, peaks)


async def test_a_composition_deleted_while_it_is_downloaded(recorded) -> None:
    unit, room_sid = recorded
    resp = await unit.client.post(
        "/v1/Compositions",
        data={"RoomSid": room_sid, "VideoLayout": GRID, "Resolution": "1280x720",
              "Format": "mp4", "AudioSources": "*"},
        headers=unit.auth,
    )  # fmt: skip
    sid = (await resp.json())["sid"]
    content = (await composed(unit, sid)).read_bytes()
    assert len(content) > 10_000
    resp = await unit.client.get(
        f"/v1/Compositions/{sid}/Media", headers=unit.auth, allow_redirects=False
    )
    signed = resp.headers["Location"][len(unit.base) :]
    download = await unit.client.get(signed)
    first = await download.content.read(1000)
    client = twilio(unit)
    assert await asyncio.to_thread(client.video.v1.compositions(sid).delete)
    # the download under way completes; the media is gone for anyone else
    rest = await download.read()
    assert first + rest == content
    gone = await asyncio.to_thread(client.video.v1.compositions(sid).fetch)
    assert gone.status == "deleted"
    assert not (unit.context.recordings.directory / f"{sid}.mp4").exists()
    assert (await unit.client.get(signed)).status == 404
    media = await unit.client.get(f"/v1/Compositions/{sid}/Media", headers=unit.auth)
    assert media.status == 404 and (await media.json())["code"] == 20404
    # the recordings it was made from are still there
    assert all(
        r.status == "completed" and unit.context.recordings.path(r).exists()
        for r in unit.context.store.find_recordings(_room_filter(room_sid), 50, 0)
    )


async def test_an_mp4_falls_back_to_libx264_when_the_hardware_encoder_fails(
    recorded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from edge_sfu.recording import composer

    unit, room_sid = recorded
    # a board that seems to have the V4L2 encoder, whose h264_v4l2m2m cannot open it
    device = tmp_path / "video11"
    device.write_bytes(b"")
    monkeypatch.setattr(composer, "V4L2_ENCODER_DEVICE", device)
    assert composer.h264_encoders() == ["h264_v4l2m2m", "libx264"]
    path = await _make(unit, room_sid, VideoLayout=GRID, Resolution="320x240", Format="mp4")
    info = probe(path)
    assert info["codec"] == "h264" and info["size"] == (320, 240)
    image = frame_at(path, info["duration"] - 1.0)
    assert near(colour(image, 80, 60), PEOPLE["red"][1])
    assert any("h264_v4l2m2m failed" in r.getMessage() for r in caplog.records)
