"""Status-callback pieces: Twilio's signature, its parameters, the backoff."""

from __future__ import annotations

from twilio.request_validator import RequestValidator

from edge_sfu.callbacks import StatusCallbacks, event_params, twilio_signature
from edge_sfu.rooms import RoomService
from edge_sfu.rooms import events as ev
from edge_sfu.store import Store


def test_signature_matches_twilio_python() -> None:
    token = "0123456789abcdef0123456789abcdef"
    url = "https://backend.example/status?x=1"
    params = {
        "RoomSid": "RM1",
        "AccountSid": "AC1",
        "StatusCallbackEvent": "room-created",
        "Ü": "é",
    }
    ours = twilio_signature(token, url, params)
    assert ours == RequestValidator(token).compute_signature(url, params)
    assert RequestValidator(token).validate(url, params, ours)


async def test_params_of_each_event(service: RoomService, events: list) -> None:
    p = await service.connect("alice", "lobby")
    t = await service.publish_track(p.sid, "video", "cam")
    await service.set_reconnecting(p.sid)
    await service.disconnect(p.sid)
    names = []
    for event in events:
        found = event_params("AC" + "0" * 32, event)
        names.append(None if found is None else found[1]["StatusCallbackEvent"])
    assert names == [
        "room-created", "participant-connected", "track-added", None, "track-removed",
        "participant-disconnected",
    ]  # fmt: skip
    _, track_added = event_params("AC", events[2])
    assert track_added["TrackSid"] == t.sid and track_added["ParticipantSid"] == p.sid
    assert track_added["Timestamp"].endswith("Z")
    assert isinstance(events[3], ev.ParticipantReconnecting)


def test_backoff_grows_with_jitter_and_a_ceiling(store: Store) -> None:
    cb = StatusCallbacks(store, "AC", "t" * 32, base_delay=1.0, max_delay=60.0)
    for attempt in range(12):
        ceiling = min(60.0, 2.0**attempt)
        samples = [cb._backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        if attempt > 2:
            assert len(set(samples)) > 1


def test_sequence_numbers_are_per_room_and_persistent(store: Store) -> None:
    assert [store.next_sequence("RMa") for _ in range(3)] == [0, 1, 2]
    assert store.next_sequence("RMb") == 0
    assert store.next_sequence("RMa") == 3
