"""Subscribe/Recording Rules: Twilio's grammar is enforced, evaluation is last-match-wins."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from edge_sfu.errors import InvalidParameter
from edge_sfu.rooms import parse_recording_rules, parse_subscribe_rules, rules_allow


def track(name: str, kind: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, kind=kind)


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        "{}",
        '[{"all": true}]',
        '[{"type": "maybe", "all": true}]',
        '[{"type": "include", "all": false}]',
        '[{"type": "include", "all": true, "kind": "audio"}]',
        '[{"type": "include"}]',
        '[{"type": "include", "kind": "smell"}]',
        '[{"type": "include", "publisher": 3}]',
        '[{"type": "include", "publisher": ""}]',
        '[{"type": "include", "all": true, "color": "red"}]',
        '[{"type": "include", "all": true, "priority": "urgent"}]',
        "[" + ",".join(['{"type": "include", "all": true}'] * 21) + "]",
        '["include"]',
        "[" * 5000,
    ],
)
def test_bad_subscribe_rules_are_53215(raw: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_subscribe_rules(raw)
    assert info.value.code == 53215


def test_recording_rules_refuse_data_kind_and_priority() -> None:
    for raw in (
        '[{"type": "include", "kind": "data"}]',
        '[{"type": "include", "all": true, "priority": "low"}]',
    ):
        with pytest.raises(InvalidParameter) as info:
            parse_recording_rules(raw)
        assert info.value.code == 53120


def test_rules_wrapped_in_an_object_are_accepted() -> None:
    rules = parse_recording_rules(json.dumps({"rules": [{"type": "include", "all": True}]}))
    assert rules == [{"type": "include", "all": True}]


def test_last_matching_rule_wins() -> None:
    audio_only = parse_subscribe_rules(
        '[{"type":"include","all":true},{"type":"exclude","kind":"video"}]'
    )
    assert rules_allow(audio_only, "alice", track("mic", "audio"))
    assert not rules_allow(audio_only, "alice", track("cam", "video"))
    alice_only = parse_subscribe_rules(
        '[{"type":"exclude","all":true},{"type":"include","publisher":"alice"}]'
    )
    assert rules_allow(alice_only, "alice", track("cam", "video"))
    assert not rules_allow(alice_only, "bob", track("cam", "video"))
    combined = parse_subscribe_rules('[{"type":"include","publisher":"bob","kind":"audio"}]')
    assert rules_allow(combined, "bob", track("mic", "audio"))
    assert not rules_allow(combined, "bob", track("cam", "video"))
    assert not rules_allow([], "bob", track("mic", "audio"))
