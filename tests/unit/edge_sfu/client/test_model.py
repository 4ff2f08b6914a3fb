"""The Python client's model of a room: server messages in, participants and events out."""

from __future__ import annotations

from typing import Any

from aiortc.mediastreams import AudioStreamTrack

from edge_sfu.client.model import RemoteParticipants, RemoteTrackPublication

ALICE = "PA" + "a" * 32
MIC = "MT" + "1" * 32
CAM = "MT" + "2" * 32


def _model() -> tuple[RemoteParticipants, list[tuple[Any, ...]], AudioStreamTrack]:
    events: list[tuple[Any, ...]] = []
    received = AudioStreamTrack()

    def receive(msg: dict[str, Any], pub: RemoteTrackPublication) -> AudioStreamTrack | None:
        return received if msg.get("mid") == "0" else None

    model = RemoteParticipants(lambda *args: events.append(args), receive)
    return model, events, received


def _alice(*tracks: dict[str, Any]) -> dict[str, Any]:
    return {"sid": ALICE, "identity": "alice", "tracks": list(tracks)}


def _track(sid: str, name: str, enabled: bool = True) -> dict[str, Any]:
    return {"sid": sid, "name": name, "kind": "audio", "enabled": enabled}


def test_messages_become_model_changes_and_events():
    model, events, received = _model()
    model.apply("participant-connected", {"participant": _alice(_track(MIC, "mic"))})
    alice = model.by_sid[ALICE]
    assert [e[0] for e in events] == ["participant_connected", "track_published"]
    model.apply("track-subscribed", {"participant_sid": ALICE, "track_sid": MIC, "mid": "0"})
    assert alice.tracks[MIC].track is received
    assert events[-1] == ("track_subscribed", received, alice.tracks[MIC], alice)
    model.apply("track-disabled", {"participant_sid": ALICE, "track_sid": MIC})
    assert events[-1][0] == "track_disabled" and not alice.tracks[MIC].enabled
    model.apply("participant-reconnecting", {"participant_sid": ALICE})
    assert alice.state == "reconnecting"
    model.apply("participant-disconnected", {"participant_sid": ALICE})
    assert [e[0] for e in events[-2:]] == ["track_unsubscribed", "participant_disconnected"]
    assert model.by_sid == {} and alice.state == "disconnected"


def test_a_subscription_without_its_transceiver_is_not_announced():
    model, events, _received = _model()
    model.apply("participant-connected", {"participant": _alice(_track(MIC, "mic"))})
    model.apply("track-subscribed", {"participant_sid": ALICE, "track_sid": MIC, "mid": "9"})
    assert model.by_sid[ALICE].tracks[MIC].track is None
    assert events[-1][0] == "track_published"


def test_messages_about_strangers_are_ignored():
    model, events, _received = _model()
    model.apply("track-enabled", {"participant_sid": ALICE, "track_sid": MIC})
    model.apply("participant-disconnected", {"participant_sid": ALICE})
    assert events == [] and model.by_sid == {}


def test_a_snapshot_after_a_reconnect_replays_what_was_missed():
    model, events, received = _model()
    model.sync([_alice(_track(MIC, "mic"))], emit=False)
    assert events == []  # the first join: the room is as it is
    model.apply("track-subscribed", {"participant_sid": ALICE, "track_sid": MIC, "mid": "0"})
    events.clear()
    # While away: the mic was unpublished and a muted camera published.
    model.sync([_alice(_track(CAM, "camera", enabled=False))], emit=True)
    model.sync_subscriptions([])
    names = [e[0] for e in events]
    assert names == ["track_unsubscribed", "track_unpublished", "track_published"]
    assert events[0][1] is received
    assert list(model.by_sid[ALICE].tracks) == [CAM]
    assert not model.by_sid[ALICE].tracks[CAM].enabled
    events.clear()
    model.sync([], emit=True)
    assert [e[0] for e in events] == ["participant_disconnected"]
