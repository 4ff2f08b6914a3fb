"""RoomService: lifecycle, refusals (53105, 53118, 53205), tracks, subscriptions, timeouts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edge_sfu.errors import NotFound, RoomError
from edge_sfu.rooms import RoomService, RoomSettings
from edge_sfu.rooms import events as ev
from edge_sfu.rooms.model import utcnow


async def test_connect_creates_room_ad_hoc_with_defaults(
    service: RoomService, events: list
) -> None:
    p = await service.connect("alice", "lobby")
    room = service.live_room_by_name("lobby")
    assert room is not None and room.sid == p.room_sid
    assert room.settings.max_participants == 3 and room.settings.empty_room_timeout == 5
    assert [type(e) for e in events] == [ev.RoomCreated, ev.ParticipantConnected]
    assert p.status == "connected"


async def test_full_room_refuses_53105(service: RoomService) -> None:
    for name in ("a", "b", "c"):
        await service.connect(name, "lobby")
    with pytest.raises(RoomError) as info:
        await service.connect("d", "lobby")
    assert info.value.code == 53105
    assert len(service.live_room_by_name("lobby").participants) == 3


async def test_completed_room_refuses_53118(service: RoomService) -> None:
    p = await service.connect("alice", "lobby")
    await service.complete_room(p.room_sid)
    with pytest.raises(RoomError) as info:
        await service.connect("bob", p.room_sid)
    assert info.value.code == 53118
    # the name is free again: a new room of the same name starts
    again = await service.connect("bob", "lobby")
    assert again.room_sid != p.room_sid


async def test_unknown_room_without_create_is_53106(service: RoomService) -> None:
    with pytest.raises(NotFound) as info:
        await service.connect("alice", "nowhere", create_ok=False)
    assert info.value.code == 53106


async def test_duplicate_identity_kicks_the_older_53205(service: RoomService, events: list) -> None:
    first = await service.connect("alice", "lobby")
    second = await service.connect("alice", "lobby")
    kicked = [e for e in events if isinstance(e, ev.ParticipantDisconnected)]
    assert [(e.participant.sid, e.reason_code) for e in kicked] == [(first.sid, 53205)]
    room = service.live_room(first.room_sid)
    assert list(room.participants) == [second.sid]
    assert first.status == "disconnected" and first.end_time is not None


async def test_complete_room_disconnects_everyone_with_53118(
    service: RoomService, events: list
) -> None:
    a = await service.connect("alice", "lobby")
    await service.connect("bob", "lobby")
    await service.publish_track(a.sid, "audio", "mic")
    room = await service.complete_room(a.room_sid)
    assert room.status == "completed" and room.duration is not None
    kinds = [type(e).__name__ for e in events[-4:]]
    assert kinds == [
        "TrackUnpublished",
        "ParticipantDisconnected",
        "ParticipantDisconnected",
        "RoomCompleted",
    ]
    assert all(e.reason_code == 53118 for e in events if isinstance(e, ev.ParticipantDisconnected))
    assert service.live_room(a.room_sid) is None
    assert service.find_room(a.room_sid).status == "completed"


async def test_tracks_and_subscriptions(service: RoomService, events: list) -> None:
    a = await service.connect("alice", "lobby")
    b = await service.connect("bob", "lobby")
    cam = await service.publish_track(a.sid, "video", "cam")
    with pytest.raises(RoomError) as info:
        await service.publish_track(a.sid, "video", "cam")
    assert info.value.code == 53304
    assert service.allowed_tracks(b.sid) == [cam]
    sub = await service.subscribe(b.sid, cam.sid)
    assert sub.publisher_sid == a.sid and b.subscribed[cam.sid] is sub
    await service.set_track_enabled(a.sid, cam.sid, False)
    assert sub.enabled is False
    await service.unpublish_track(a.sid, cam.sid)
    assert cam.sid not in b.subscribed
    names = [type(e).__name__ for e in events[-4:]]
    assert names == ["TrackSubscribed", "TrackDisabled", "TrackUnsubscribed", "TrackUnpublished"]


async def test_reconnecting_and_back(service: RoomService, events: list) -> None:
    a = await service.connect("alice", "lobby")
    await service.set_reconnecting(a.sid)
    assert a.status == "reconnecting"
    await service.set_reconnected(a.sid)
    assert a.status == "connected"
    assert [type(e) for e in events[-2:]] == [ev.ParticipantReconnecting, ev.ParticipantReconnected]


async def test_unused_and_empty_timeouts(service: RoomService) -> None:
    settings = RoomSettings.from_defaults(service.defaults)
    unused = await service.create_room("unused", settings)
    now = utcnow()
    await service.sweep(now + timedelta(minutes=4))
    assert unused.in_progress
    await service.sweep(now + timedelta(minutes=5, seconds=1))
    assert unused.status == "completed"
    p = await service.connect("alice", "emptied")
    await service.disconnect(p.sid)
    room = service.find_room(p.room_sid)
    await service.sweep(room.empty_since + timedelta(minutes=4))
    assert room.in_progress
    await service.sweep(room.empty_since + timedelta(minutes=5))
    assert room.status == "completed"


async def test_max_participant_duration_and_room_duration(
    service: RoomService, events: list
) -> None:
    p = await service.connect("alice", "long")
    await service.sweep(p.start_time + timedelta(seconds=14400))
    assert p.status == "disconnected"
    assert events[-1].reason_code == 53216
    q = await service.connect("bob", "longer")
    await service.sweep(q.start_time + timedelta(hours=24))
    assert service.find_room(q.room_sid).status == "completed"


async def test_duplicate_name_is_53113(service: RoomService) -> None:
    settings = RoomSettings.from_defaults(service.defaults)
    await service.create_room("x", settings)
    with pytest.raises(RoomError) as info:
        await service.create_room("x", settings)
    assert info.value.code == 53113


async def test_listener_errors_do_not_break_the_model(service: RoomService) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("boom")

    service.add_listener(broken)
    p = await service.connect("alice", "lobby")
    assert p.status == "connected"


async def test_track_refusals(service: RoomService) -> None:
    from edge_sfu.errors import InvalidParameter

    p = await service.connect("alice", "lobby")
    for kind, name, code in (
        ("smell", "x", 53300),
        ("audio", "", 53301),
        ("audio", "x" * 129, 53302),
        ("audio", "a\nb", 53303),
    ):
        with pytest.raises(InvalidParameter) as info:
            await service.publish_track(p.sid, kind, name)
        assert info.value.code == code
    assert p.published == {}


async def test_audio_only_room_refuses_video_53125(service: RoomService) -> None:
    from dataclasses import replace

    settings = replace(RoomSettings.from_defaults(service.defaults), audio_only=True)
    await service.create_room("voice", settings)
    p = await service.connect("alice", "voice")
    with pytest.raises(RoomError) as info:
        await service.publish_track(p.sid, "video", "cam")
    assert info.value.code == 53125
    assert (await service.publish_track(p.sid, "audio", "mic")).kind == "audio"


async def test_start_ends_rooms_a_dead_daemon_left_and_announces_it(store) -> None:
    from edge_sfu.rooms import RoomDefaults

    crashed = RoomService(store, RoomDefaults())
    p = await crashed.connect("alice", "left-open")  # never closed: the daemon "died"
    seen: list = []
    fresh = RoomService(store, RoomDefaults(), sweep_interval=3600)
    fresh.add_listener(seen.append)
    await fresh.start()
    try:
        assert [type(e) for e in seen] == [ev.RoomCompleted]
        assert seen[0].room.sid == p.room_sid and seen[0].room.status == "completed"
        stored = store.get_participant(p.room_sid, p.sid)
        assert (
            stored is not None and stored.status == "disconnected" and stored.duration is not None
        )
    finally:
        await fresh.close()
