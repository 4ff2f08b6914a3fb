"""Recordings through the REST API: twilio-python lists, fetches and deletes them, the media
redirect and its signed URL (with Range), status callbacks, the quota, and bad input."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from edge_sfu.media import H264, OPUS, EncodedFrame
from edge_sfu.recording.disk import RecordingSettings
from edge_sfu.signaling import SIGNALING
from tests.integration.control.receiver import Receiver
from tests.integration.control.twilio_adapter import LocalVideoHttpClient
from tests.support.media import H264TestSource
from tests.support.sfu import Unit, start_unit

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def unit(tmp_path: Path) -> AsyncIterator[Unit]:
    started = await start_unit(tmp_path)
    yield started
    await started.client.close()


def twilio(unit: Unit) -> Client:
    return Client(
        unit.key.sid,
        unit.key.secret,
        unit.identity.account_sid,
        http_client=LocalVideoHttpClient(unit.base),
    )


async def record_kiosk(unit: Unit, room: str, seconds: float = 2.0) -> None:
    """An in-process participant publishes H.264 and Opus into ``room`` for ``seconds``."""
    kiosk = await unit.client.app[SIGNALING].connect_local(room, "kiosk")
    camera = await kiosk.publish("camera", H264)
    source = H264TestSource(camera, 320, 240, fps=15)
    mic = await kiosk.publish("microphone", OPUS)
    start = time.monotonic()
    while time.monotonic() - start < seconds:  # a silent Opus frame every 20 ms
        mic.push(EncodedFrame(b"\xf8\xff\xfe", True, time.monotonic_ns() // 1000))
        await asyncio.sleep(0.02)
    await source.close()
    await kiosk.disconnect()


async def wait_recordings(unit: Unit, room_sid: str, status: str, count: int) -> list:
    from edge_sfu.store import RecordingFilter

    flt = RecordingFilter(room_sid=room_sid, status=status)
    for _ in range(200):
        found = unit.context.store.find_recordings(flt, 50, 0)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {count} {status} recordings")


async def test_twilio_client_lists_fetches_and_deletes_recordings(
    unit: Unit, receiver: Receiver
) -> None:
    client = twilio(unit)
    url = str(receiver.server.make_url("/status")) if receiver.server else ""
    room = await asyncio.to_thread(
        client.video.v1.rooms.create,
        unique_name="recorded",
        record_participants_on_connect=True,
        status_callback=url,
    )
    await record_kiosk(unit, "recorded")
    await wait_recordings(unit, room.sid, "completed", 2)

    listed = await asyncio.to_thread(client.video.v1.recordings.list)
    assert len(listed) == 2
    by_type = {r.type: r for r in listed}
    video, audio = by_type["video"], by_type["audio"]
    assert video.sid.startswith("RT") and video.status == "completed"
    assert (video.container_format, video.codec) == ("mkv", "H264")
    assert (audio.container_format, audio.codec) == ("mka", "OPUS")
    assert video.track_name == "camera" and video.source_sid.startswith("MT")
    assert video.grouping_sids["room_sid"] == room.sid
    assert video.grouping_sids["participant_sid"].startswith("PA")
    assert video.size > 1000 and 1 <= video.duration <= 3 and video.offset >= 0
    assert video.links["media"].endswith(f"/v1/Recordings/{video.sid}/Media")

    # filters
    recordings = client.video.v1.recordings
    assert [r.sid for r in await asyncio.to_thread(recordings.list, media_type="audio")] == [
        audio.sid
    ]
    by_source = await asyncio.to_thread(recordings.list, source_sid=video.source_sid)
    assert [r.sid for r in by_source] == [video.sid]
    grouped = await asyncio.to_thread(recordings.list, grouping_sid=[room.sid])
    assert len(grouped) == 2
    assert await asyncio.to_thread(recordings.list, status="processing") == []
    in_room = await asyncio.to_thread(client.video.v1.rooms(room.sid).recordings.list)
    assert {r.sid for r in in_room} == {video.sid, audio.sid}
    one = await asyncio.to_thread(client.video.v1.rooms(room.sid).recordings(audio.sid).fetch)
    assert one.room_sid == room.sid and one.codec == "OPUS"

    # the media: a redirect to a signed URL, served with Range support
    path = unit.context.recordings.path(unit.context.store.get_recording(video.sid))
    content = path.read_bytes()
    resp = await unit.client.get(
        f"/v1/Recordings/{video.sid}/Media", headers=unit.auth, allow_redirects=False
    )
    assert resp.status == 302
    location = resp.headers["Location"]
    assert (await resp.json())["redirect_to"] == location
    signed = location[len(unit.base) :]
    whole = await unit.client.get(signed)
    assert whole.status == 200 and await whole.read() == content
    assert whole.headers["Content-Type"] == "video/x-matroska"
    part = await unit.client.get(signed, headers={"Range": "bytes=100-199"})
    assert part.status == 206 and await part.read() == content[100:200]
    forged = await unit.client.get(signed[:-4] + "0000")
    assert forged.status == 403 and (await forged.json())["code"] == 20003
    expires = int(time.time()) - 1
    stale = await unit.client.get(f"/v1/Media/{video.sid}?Expires={expires}&Signature=00")
    assert stale.status == 403

    # deleted while a download is under way: the download completes, the media is gone
    download = await unit.client.get(signed)
    first = await download.content.read(1000)
    assert await asyncio.to_thread(recordings(video.sid).delete)
    rest = await download.read()
    assert first + rest == content
    deleted = await asyncio.to_thread(recordings(video.sid).fetch)
    assert deleted.status == "deleted" and not path.exists()
    assert (await unit.client.get(signed)).status == 404
    media = await unit.client.get(f"/v1/Recordings/{video.sid}/Media", headers=unit.auth)
    assert media.status == 404
    kept = await asyncio.to_thread(recordings(audio.sid).fetch)
    assert kept.status == "completed"

    # callbacks, signed as Twilio signs them
    await receiver.wait_for(1)
    await asyncio.sleep(0.5)
    events = [
        (r.params["StatusCallbackEvent"], r.params.get("RecordingSid")) for r in receiver.received
    ]
    for rec in (video, audio):
        assert ("recording-started", rec.sid) in events
        assert ("recording-completed", rec.sid) in events
    validator = RequestValidator(unit.identity.auth_token)
    completed = next(r for r in receiver.received if r.params.get("RecordingSid") == video.sid
                     and r.params["StatusCallbackEvent"] == "recording-completed")  # fmt: skip
    assert validator.validate(completed.url, completed.params, completed.signature)
    assert completed.params["Container"] == "mkv" and completed.params["Codec"] == "H264"
    assert completed.params["TrackName"] == "camera"
    assert completed.params["ParticipantIdentity"] == "kiosk"
    assert int(completed.params["RecordingSize"]) == len(content)


async def test_bad_recording_requests_get_twilio_errors(unit: Unit) -> None:
    client = twilio(unit)
    with pytest.raises(TwilioRestException) as missing:
        await asyncio.to_thread(client.video.v1.recordings("RT" + "0" * 32).fetch)
    assert missing.value.status == 404 and missing.value.code == 20404
    for query in (
        "Status=paused",
        "GroupingSid=XX123",
        "SourceSid=RM" + "0" * 32,
        "MediaType=smell",
        "DateCreatedAfter=yesterday",
        "Unknown=1",
    ):
        resp = await unit.client.get(f"/v1/Recordings?{query}", headers=unit.auth)
        assert resp.status == 400, query
        assert (await resp.json())["code"] == 20001
    resp = await unit.client.get(f"/v1/Recordings/RT{'0' * 32}/Media?Ttl=0", headers=unit.auth)
    assert resp.status == 400
    assert (await unit.client.get("/v1/Recordings")).status == 401
    assert (await unit.client.get(f"/v1/Media/RT{'0' * 32}")).status == 400
    assert (await unit.client.get(f"/v1/Media/RT{'0' * 32}?Expires=1&Signature=a")).status == 403


async def test_a_full_quota_refuses_new_recordings_and_harms_nothing(
    tmp_path: Path, receiver: Receiver
) -> None:
    from tests.integration.recording.test_disk_limits import MB, leave, limits

    leave(tmp_path / "full", 16 * MB, 0)  # the quota is used up before the unit starts
    unit = await start_unit(tmp_path / "full", recording=limits(quota_mb=16))
    try:
        ctx = unit.context
        url = str(receiver.server.make_url("/status")) if receiver.server else ""
        resp = await unit.client.post(
            "/v1/Rooms",
            data={
                "UniqueName": "full",
                "RecordParticipantsOnConnect": "true",
                "StatusCallback": url,
            },
            headers=unit.auth,
        )
        room_sid = (await resp.json())["sid"]
        await record_kiosk(unit, "full", seconds=1.0)
        failed = await wait_recordings(unit, room_sid, "failed", 2)
        assert all(not ctx.recordings.path(r).exists() for r in failed)
        await receiver.wait_for(1)
        await asyncio.sleep(0.5)
        refusals = [r.params for r in receiver.received
                    if r.params["StatusCallbackEvent"] == "recording-failed"]  # fmt: skip
        assert len(refusals) == 2
        assert all("quota" in p["FailureReason"] for p in refusals)
        # the room itself went on: it has its participant's history and is still in progress
        room = await unit.client.get(f"/v1/Rooms/{room_sid}", headers=unit.auth)
        assert (await room.json())["status"] == "in-progress"
    finally:
        await unit.client.close()


async def test_retention_deletes_old_media_and_keeps_the_rest(unit: Unit) -> None:
    ctx = unit.context
    resp = await unit.client.post(
        "/v1/Rooms",
        data={"UniqueName": "old", "RecordParticipantsOnConnect": "true"},
        headers=unit.auth,
    )
    room_sid = (await resp.json())["sid"]
    await record_kiosk(unit, "old", seconds=1.0)
    old, recent = await wait_recordings(unit, room_sid, "completed", 2)
    old.date_created -= timedelta(days=3)
    ctx.store.save_recording(old)
    ctx.recordings.settings = RecordingSettings(retention_days=2)
    assert ctx.recordings.apply_retention() == 1
    assert ctx.store.get_recording(old.sid).status == "deleted"
    assert not ctx.recordings.path(old).exists()
    assert ctx.store.get_recording(recent.sid).status == "completed"
    assert ctx.recordings.path(recent).exists()


async def test_recording_rules_start_and_stop_recordings_live(unit: Unit) -> None:
    ctx = unit.context
    resp = await unit.client.post("/v1/Rooms", data={"UniqueName": "ruled"}, headers=unit.auth)
    room_sid = (await resp.json())["sid"]
    kiosk = await unit.client.app[SIGNALING].connect_local("ruled", "kiosk")
    camera = await kiosk.publish("camera", H264)
    source = H264TestSource(camera, 320, 240, fps=15)
    mic = await kiosk.publish("microphone", OPUS)
    try:
        await asyncio.sleep(0.5)
        assert not ctx.recordings.is_recording(room_sid)  # nothing asked to record
        rules = '[{"type": "include", "kind": "audio"}]'
        resp = await unit.client.post(
            f"/v1/Rooms/{room_sid}/RecordingRules", data={"Rules": rules}, headers=unit.auth
        )
        assert resp.status == 200
        for _ in range(50):
            mic.push(EncodedFrame(b"\xf8\xff\xfe", True, time.monotonic_ns() // 1000))
            await asyncio.sleep(0.02)
        (rec,) = await wait_recordings(unit, room_sid, "processing", 1)
        assert rec.kind == "audio" and rec.source_sid == mic.id
        resp = await unit.client.post(
            f"/v1/Rooms/{room_sid}/RecordingRules",
            data={"Rules": '[{"type": "exclude", "all": true}]'},
            headers=unit.auth,
        )
        assert resp.status == 200
        (done,) = await wait_recordings(unit, room_sid, "completed", 1)
        assert done.sid == rec.sid and not ctx.recordings.is_recording(room_sid)
    finally:
        await source.close()
        await kiosk.disconnect()


async def test_recordings_filtered_by_participant_and_date(unit: Unit) -> None:
    client = twilio(unit)
    resp = await unit.client.post(
        "/v1/Rooms",
        data={"UniqueName": "pair", "RecordParticipantsOnConnect": "true"},
        headers=unit.auth,
    )
    room_sid = (await resp.json())["sid"]
    signaling = unit.client.app[SIGNALING]
    for identity in ("first", "second"):  # one after the other, 2.5 s apart
        member = await signaling.connect_local("pair", identity)
        mic = await member.publish("microphone", OPUS)
        for _ in range(50):
            mic.push(EncodedFrame(b"\xf8\xff\xfe", True, time.monotonic_ns() // 1000))
            await asyncio.sleep(0.02)
        await member.disconnect()
        await asyncio.sleep(1.5)
    await wait_recordings(unit, room_sid, "completed", 2)
    recordings = client.video.v1.recordings
    first, second = sorted(await asyncio.to_thread(recordings.list), key=lambda r: r.date_created)
    assert first.grouping_sids["participant_sid"] != second.grouping_sids["participant_sid"]

    # GroupingSid: a participant's SID gives that participant's recordings only
    for rec in (first, second):
        got = await asyncio.to_thread(
            recordings.list, grouping_sid=[rec.grouping_sids["participant_sid"]]
        )
        assert [r.sid for r in got] == [rec.sid]
    assert await asyncio.to_thread(recordings.list, grouping_sid=["PA" + "0" * 32]) == []
    both = await asyncio.to_thread(recordings.list, grouping_sid=[room_sid])
    assert {r.sid for r in both} == {first.sid, second.sid}

    # DateCreatedAfter / DateCreatedBefore (whole seconds, as Twilio's clients send them)
    after = await asyncio.to_thread(
        recordings.list, date_created_after=first.date_created + timedelta(seconds=1)
    )
    assert [r.sid for r in after] == [second.sid]
    before = await asyncio.to_thread(
        recordings.list, date_created_before=second.date_created - timedelta(seconds=1)
    )
    assert [r.sid for r in before] == [first.sid]
    around = await asyncio.to_thread(
        recordings.list,
        date_created_after=first.date_created - timedelta(seconds=5),
        date_created_before=second.date_created + timedelta(seconds=5),
    )
    assert {r.sid for r in around} == {first.sid, second.sid}
    later = first.date_created + timedelta(hours=1)
    assert await asyncio.to_thread(recordings.list, date_created_after=later) == []
