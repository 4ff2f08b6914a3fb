"""A field unit's reconnect backoff: exponential, capped, jittered, and never giving up."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.field.role import FieldLink
from appliance.kiosk.events import (
    Disconnected,
    JoinFailed,
    JoinPressed,
    JoinSucceeded,
    Kicked,
    LongPressed,
    RetryTimerFired,
    RoomEnded,
    ScheduleRetry,
)
from appliance.kiosk.state import KioskMachine, KioskPolicy, KioskState

FIELD = KioskPolicy(retry_initial=1.0, retry_max=5.0, retry_jitter=0.3, persistent=True)


@given(st.integers(1, 10_000), st.floats(0.0, 1.0))
def test_every_delay_is_within_the_jitter_band_and_never_past_the_cap(failures, draw):
    full = min(5.0, 1.0 * 2.0 ** min(failures - 1, 64))
    delay = FIELD.retry_delay(failures, draw)
    assert 0.7 * full - 1e-9 <= delay <= full + 1e-9
    assert delay <= FIELD.retry_max


def test_delays_double_up_to_the_cap():
    assert [FIELD.retry_delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert FIELD.retry_delay(3, 0.0) == pytest.approx(4.0 * 0.7)


def test_the_machine_draws_a_new_jitter_for_every_retry():
    draws = itertools.cycle([0.0, 1.0, 0.5])
    machine = KioskMachine(FIELD, draw=lambda: next(draws))
    machine.handle(JoinPressed())
    delays = []
    for _ in range(6):
        effects = machine.handle(JoinFailed("hub unreachable"))
        (retry,) = [e for e in effects if isinstance(e, ScheduleRetry)]
        delays.append(retry.delay)
        assert machine.retry_delay == retry.delay
        machine.handle(RetryTimerFired(retry.generation))
    assert delays == pytest.approx([0.7, 2.0, 3.4, 3.5, 5.0, 4.25])


def test_units_that_lost_the_same_hub_do_not_come_back_together():
    rng = random.Random(7)
    firsts = set()
    for _ in range(20):
        machine = KioskMachine(FIELD, draw=rng.random)
        machine.handle(JoinPressed())
        machine.handle(JoinSucceeded())
        (retry,) = [
            e for e in machine.handle(Disconnected("hub restart")) if isinstance(e, ScheduleRetry)
        ]
        firsts.add(round(retry.delay, 3))
    assert len(firsts) > 10  # spread, not one instant


@pytest.mark.parametrize("ending", [RoomEnded(), Kicked("removed")])
def test_a_persistent_unit_rejoins_whatever_ended_the_call(ending):
    machine = KioskMachine(FIELD, draw=lambda: 1.0)
    machine.handle(JoinPressed())
    machine.handle(JoinSucceeded())
    effects = machine.handle(ending)
    assert machine.state is KioskState.ERROR
    assert any(isinstance(e, ScheduleRetry) for e in effects)
    # a kiosk (not persistent) goes idle instead
    kiosk = KioskMachine(KioskPolicy())
    kiosk.handle(JoinPressed())
    kiosk.handle(JoinSucceeded())
    kiosk.handle(ending)
    assert kiosk.state is KioskState.IDLE


def test_only_a_long_press_stops_it():
    machine = KioskMachine(FIELD, draw=lambda: 1.0)
    machine.handle(JoinPressed())
    for _ in range(100):
        (retry,) = [
            e for e in machine.handle(JoinFailed("no route")) if isinstance(e, ScheduleRetry)
        ]
        machine.handle(RetryTimerFired(retry.generation))
    assert machine.state is KioskState.JOINING and machine.failures == 100
    machine.handle(JoinFailed("no route"))
    machine.handle(LongPressed())
    assert machine.state is KioskState.IDLE


@pytest.mark.parametrize(
    "kw",
    [{"retry_jitter": -0.1}, {"retry_jitter": 1.5}, {"retry_initial": 0}, {"retry_max": 0.5}],
)
def test_bad_policies_are_refused(kw):
    with pytest.raises(ValueError):
        KioskPolicy(**kw)


def test_the_link_says_live_reconnecting_since_and_the_attempt():
    machine = KioskMachine(FIELD, draw=lambda: 1.0)
    link = FieldLink()
    link.follow(machine, 100.0)
    assert link.state == "starting"
    machine.handle(JoinPressed())
    machine.handle(JoinSucceeded())
    link.follow(machine, 101.0)
    assert (link.state, link.since, link.attempt) == ("live", 101.0, 0)
    machine.handle(Disconnected("hub gone"))
    link.follow(machine, 130.0)
    assert (link.state, link.since, link.attempt, link.reason) == (
        "reconnecting",
        130.0,
        1,
        "hub gone",
    )
    assert link.retry_in == 1.0
    machine.handle(RetryTimerFired(1))
    link.follow(machine, 131.0)
    assert (link.state, link.attempt, link.retry_in) == ("reconnecting", 1, None)
    machine.handle(JoinFailed("refused"))
    link.follow(machine, 140.0)
    # since the link was lost, not since the last attempt
    assert (link.state, link.since, link.attempt, link.reason) == (
        "reconnecting",
        130.0,
        2,
        "refused",
    )
    assert link.retry_in == 2.0
    machine.handle(LongPressed())
    link.follow(machine, 150.0)
    assert (link.state, link.since) == ("stopped", 150.0)


def test_a_call_re_making_its_link_is_reconnecting_since_it_dropped():
    machine = KioskMachine(FIELD, draw=lambda: 1.0)
    machine.handle(JoinPressed())
    machine.handle(JoinSucceeded())
    link = FieldLink()
    link.follow(machine, 10.0)
    link.follow(machine, 20.0, call_down=True)
    assert (link.state, link.since, link.attempt) == ("reconnecting", 20.0, 1)
    machine.handle(Disconnected("the client gave up"))  # the same outage goes on
    link.follow(machine, 50.0)
    assert (link.state, link.since) == ("reconnecting", 20.0)
