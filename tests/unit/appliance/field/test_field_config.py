"""Field and hub settings: bad values are refused with the key and what is allowed."""

from __future__ import annotations

import pytest

from appliance.config import ConfigError, parse_settings
from appliance.mapping import kiosk_policy

HUB = {"remote_url": "http://hub.local:8443", "remote_token": "tok"}


def problems(data: dict[str, dict[str, object]]) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(data)
    return caught.value.problems


def test_a_field_unit_needs_somewhere_to_stream():
    got = problems({"unit": {"role": "field"}})
    assert "kiosk.remote_url" in got and "streams to the hub" in got["kiosk.remote_url"]
    got = problems({"unit": {"role": "field"}, "field": {"transport": "whip"}})
    assert "field.whip_url" in got and "WHIP endpoint" in got["field.whip_url"]


@pytest.mark.parametrize(
    ("field", "key", "says"),
    [
        ({"transport": "rtmp"}, "field.transport", "must be one of 'unit', 'whip'"),
        ({"whip_url": "ftp://x"}, "field.whip_url", "http:// or https://"),
        ({"whip_token": "two words"}, "field.whip_token", "without spaces"),
        ({"retry_initial": 0}, "field.retry_initial", "from 0.1 to 60.0"),
        ({"retry_max": 1000}, "field.retry_max", "from 0.5 to 600.0"),
        ({"retry_jitter": 1.5}, "field.retry_jitter", "from 0.0 to 1.0"),
        ({"retry_initial": 10, "retry_max": 5}, "field.retry_max", "at least field.retry_initial"),
        ({"local_room": "a b"}, "field.local_room", "no spaces"),
        ({"record_while_down": "yes"}, "field.record_while_down", "true or false"),
    ],
)
def test_bad_field_values_are_refused(field, key, says):
    got = problems({"unit": {"role": "field"}, "kiosk": HUB, "field": field})
    assert key in got and says in got[key], got


@pytest.mark.parametrize(
    ("hub", "key", "says"),
    [
        ({"room": ""}, "hub.room", "1 to 128 characters"),
        ({"record": 1}, "hub.record", "true or false"),
        ({"offline_after": 1}, "hub.offline_after", "from 5 to 86400"),
        ({"viewers": True}, "hub.viewers", "unknown key"),
    ],
)
def test_bad_hub_values_are_refused(hub, key, says):
    got = problems({"unit": {"role": "hub"}, "hub": hub})
    assert key in got and says in got[key], got


def test_a_field_units_policy_comes_from_its_table():
    s = parse_settings(
        {
            "unit": {"role": "field"},
            "kiosk": HUB,
            "field": {"retry_initial": 0.5, "retry_max": 2.0, "retry_jitter": 0.5},
        }
    )
    policy = kiosk_policy(s)
    assert (policy.retry_initial, policy.retry_max, policy.retry_jitter) == (0.5, 2.0, 0.5)
    assert policy.persistent and policy.max_retries is None
    whip = parse_settings(
        {"unit": {"role": "field"}, "field": {"transport": "whip", "whip_url": "https://h/w"}}
    )
    assert whip.field.transport == "whip"
    # a kiosk keeps its own backoff and goes idle when the room ends
    kiosk = kiosk_policy(parse_settings({}))
    assert not kiosk.persistent and kiosk.retry_jitter == 0.0


def test_a_field_unit_is_its_unit_name_unless_given_an_identity():
    from appliance.mapping import call_identity

    field = {"unit": {"role": "field", "name": "north-gate"}, "kiosk": HUB}
    assert call_identity(parse_settings(field)) == "north-gate"
    named = {**field, "kiosk": {**HUB, "identity": "gate-cam"}}
    assert call_identity(parse_settings(named)) == "gate-cam"
    assert call_identity(parse_settings({"unit": {"name": "lobby"}})) == "kiosk"
