"""The unit's state in words, as docs/roles.md and the status page say it."""

from __future__ import annotations

import pytest

from appliance.status import state_in_words


@pytest.mark.parametrize(
    ("state", "muted", "missing", "words"),
    [
        (
            "in_call",
            True,
            {"speaker": "x", "microphone": "y"},
            "In a call — muted (without microphone, speaker)",
        ),
        ("in_call", False, {}, "In a call"),
        ("idle", True, {}, "Idle"),  # muted counts only in a call
        ("idle", False, {"camera": "gone"}, "Idle (without camera)"),
        ("error", False, {}, "Not connected"),
        ("serving", False, {}, "Serving rooms"),
        ("some_new_state", False, {}, "Some new state"),
    ],
)
def test_state_in_words(state: str, muted: bool, missing: dict[str, str], words: str) -> None:
    assert state_in_words(state, muted, missing) == words


def test_a_subscriber_row_says_why_it_sees_what_it_sees() -> None:
    from appliance.status import _subscriber
    from edge_sfu.stats import LayerCounters, SubscriberCounters, TrackCounters

    track = TrackCounters(0, 0, kind="video", layers={"h": LayerCounters(640, 360, 10)})
    base = dict(
        participant_sid="PA1",
        packets_sent=1,
        bytes_sent=1,
        nacks_received=0,
        plis_received=0,
        retransmitted=0,
        layer_switches=0,
        packets_lost=0,
        fraction_lost=None,
        jitter_s=None,
        rtt_s=None,
    )
    capped = SubscriberCounters(
        layer="h",
        available_outgoing_bps=612_400,
        priority="low",
        preferred_layer="f",
        allowed_layer="h",
        reason="network-congestion",
        pacing_bps=765_500,
        **base,  # type: ignore[arg-type]
    )
    row = _subscriber(capped, {"PA1": "bob"}, track, {"h": 15.0})
    assert row["identity"] == "bob" and row["size"] == "640x360" and row["fps"] == 15.0
    assert row["estimate_kbps"] == 612 and row["priority"] == "low"
    assert row["paced_kbps"] == 766
    assert (row["wanted_layer"], row["allowed_layer"]) == ("f", "h")
    assert row["why"] == "network-congestion" and not row["switched_off"]
    off = SubscriberCounters(layer=None, switched_off=True, reason="max-bandwidth-reached", **base)  # type: ignore[arg-type]
    row = _subscriber(off, {}, track, {})
    assert row["switched_off"] and row["why"] == "max-bandwidth-reached"
    assert row["estimate_kbps"] is None and row["layer"] is None and row["fps"] is None
    assert row["paced_kbps"] is None
