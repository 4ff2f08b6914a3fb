"""The kiosk state machine: every transition, the ignored inputs, and random sequences."""

from __future__ import annotations

from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from appliance.kiosk.events import (
    CancelRetry,
    Disconnected,
    JoinFailed,
    JoinPressed,
    JoinSucceeded,
    Kicked,
    KioskEffect,
    KioskInput,
    LedPattern,
    Left,
    LongPressed,
    MutePressed,
    RetryTimerFired,
    RoomEnded,
    ScheduleRetry,
    SetLed,
    SetMute,
    ShowStatus,
    StartJoin,
    StartLeave,
)
from appliance.kiosk.state import KioskMachine, KioskPolicy, KioskState, LeaveOn

ALL_INPUTS: list[KioskInput] = [
    JoinPressed(),
    LongPressed(),
    MutePressed(),
    JoinSucceeded(),
    JoinFailed("boom"),
    RoomEnded(),
    Kicked("host"),
    Disconnected("net"),
    Left(),
    RetryTimerFired(0),
    RetryTimerFired(99),
]


E = TypeVar("E")


def only(effects: list[KioskEffect], kind: type) -> list[KioskEffect]:
    return [e for e in effects if isinstance(e, kind)]


def one(effects: list[KioskEffect], kind: type[E]) -> E:
    """The only effect of ``kind`` among ``effects`` (there must be exactly one)."""
    found = only(effects, kind)
    assert len(found) == 1, effects
    effect = found[0]
    assert isinstance(effect, kind)
    return effect


def led(effects: list[KioskEffect]) -> LedPattern:
    return one(effects, SetLed).pattern


def status(effects: list[KioskEffect]) -> str:
    return one(effects, ShowStatus).text


def machine_in(state: KioskState, policy: KioskPolicy | None = None) -> KioskMachine:
    """A machine driven into ``state`` through its public inputs only."""
    m = KioskMachine(policy or KioskPolicy(room="Boardroom"))
    path: dict[KioskState, list[KioskInput]] = {
        KioskState.IDLE: [],
        KioskState.JOINING: [JoinPressed()],
        KioskState.IN_CALL: [JoinPressed(), JoinSucceeded()],
        KioskState.LEAVING: [JoinPressed(), JoinSucceeded(), JoinPressed()],
        KioskState.ERROR: [JoinPressed(), JoinFailed("unreachable")],
    }
    for event in path[state]:
        m.handle(event)
    assert m.state is state
    return m


# --- the happy path -----------------------------------------------------------------------


def test_initial_effects_show_idle() -> None:
    m = KioskMachine(KioskPolicy(room="Boardroom"))
    effects = m.initial_effects()
    assert led(effects) is LedPattern.IDLE
    assert status(effects) == "Press to join Boardroom"
    assert m.state is KioskState.IDLE and not m.muted


def test_press_joins_then_press_again_leaves() -> None:
    m = KioskMachine(KioskPolicy(room="Boardroom"))
    effects = m.handle(JoinPressed())
    assert effects[0] == StartJoin(attempt=1)
    assert led(effects) is LedPattern.JOINING
    assert status(effects) == "Joining Boardroom"

    effects = m.handle(JoinSucceeded())
    assert effects[0] == SetMute(False)
    assert led(effects) is LedPattern.IN_CALL
    assert status(effects) == "In call Boardroom"

    effects = m.handle(JoinPressed())
    assert effects[0] == StartLeave()
    assert m.state is KioskState.LEAVING
    assert led(effects) is LedPattern.LEAVING

    effects = m.handle(Left())
    assert m.state is KioskState.IDLE
    assert led(effects) is LedPattern.IDLE
    assert status(effects) == "Press to join Boardroom"


def test_start_muted_policy_mutes_on_join() -> None:
    m = machine_in(KioskState.JOINING, KioskPolicy(start_muted=True))
    effects = m.handle(JoinSucceeded())
    assert effects[0] == SetMute(True)
    assert led(effects) is LedPattern.IN_CALL_MUTED
    assert m.muted


def test_mute_toggles_in_call() -> None:
    m = machine_in(KioskState.IN_CALL)
    effects = m.handle(MutePressed())
    assert effects[0] == SetMute(True)
    assert led(effects) is LedPattern.IN_CALL_MUTED
    assert status(effects) == "In call Boardroom (muted)"
    effects = m.handle(MutePressed())
    assert effects[0] == SetMute(False)
    assert led(effects) is LedPattern.IN_CALL
    assert m.state is KioskState.IN_CALL


@pytest.mark.parametrize("state", [s for s in KioskState if s is not KioskState.IN_CALL])
def test_mute_is_ignored_outside_a_call(state: KioskState) -> None:
    m = machine_in(state)
    assert m.handle(MutePressed()) == []
    assert m.state is state and not m.muted


def test_mute_resets_when_the_call_ends() -> None:
    m = machine_in(KioskState.IN_CALL)
    m.handle(MutePressed())
    assert m.muted
    m.handle(RoomEnded())
    assert not m.muted
    m.handle(JoinPressed())
    assert m.handle(JoinSucceeded())[0] == SetMute(False)


# --- leave gestures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leave_on", "gesture", "leaves"),
    [
        (LeaveOn.EITHER, JoinPressed(), True),
        (LeaveOn.EITHER, LongPressed(), True),
        (LeaveOn.PRESS_AGAIN, JoinPressed(), True),
        (LeaveOn.PRESS_AGAIN, LongPressed(), False),
        (LeaveOn.LONG_PRESS, JoinPressed(), False),
        (LeaveOn.LONG_PRESS, LongPressed(), True),
    ],
)
def test_leave_gesture_is_configurable(
    leave_on: LeaveOn, gesture: KioskInput, leaves: bool
) -> None:
    m = machine_in(KioskState.IN_CALL, KioskPolicy(leave_on=leave_on))
    effects = m.handle(gesture)
    if leaves:
        assert effects[0] == StartLeave()
        assert m.state is KioskState.LEAVING
    else:
        assert effects == []
        assert m.state is KioskState.IN_CALL


def test_long_press_in_idle_does_nothing() -> None:
    m = KioskMachine()
    assert m.handle(LongPressed()) == []
    assert m.state is KioskState.IDLE


# --- storms ---------------------------------------------------------------------------------


def test_button_storm_while_idle_starts_one_join() -> None:
    m = KioskMachine()
    effects: list[KioskEffect] = []
    for _ in range(50):
        effects += m.handle(JoinPressed())
        effects += m.handle(LongPressed())
        effects += m.handle(MutePressed())
    assert only(effects, StartJoin) == [StartJoin(attempt=1)]
    assert only(effects, StartLeave) == []
    assert m.state is KioskState.JOINING


def test_button_storm_in_call_starts_one_leave() -> None:
    m = machine_in(KioskState.IN_CALL)
    effects: list[KioskEffect] = []
    for _ in range(50):
        effects += m.handle(JoinPressed())
    assert only(effects, StartLeave) == [StartLeave()]
    assert only(effects, StartJoin) == []
    assert m.state is KioskState.LEAVING


# Presses are ignored, and remote endings wait, while an operation is in flight.
@pytest.mark.parametrize("state", [KioskState.JOINING, KioskState.LEAVING])
@pytest.mark.parametrize(
    "event",
    [JoinPressed(), LongPressed(), MutePressed(), RoomEnded(), Kicked("x"), Disconnected("y")],
)
def test_presses_and_remote_endings_wait_for_the_operation_in_flight(
    state: KioskState, event: KioskInput
) -> None:
    m = machine_in(state)
    assert m.handle(event) == []
    assert m.state is state


# --- remote endings --------------------------------------------------------------------------


@pytest.mark.parametrize("ending", [RoomEnded("room completed"), Kicked("removed by host")])
def test_room_ended_or_kicked_returns_to_idle_without_retry(ending: KioskInput) -> None:
    m = machine_in(KioskState.IN_CALL)
    effects = m.handle(ending)
    assert m.state is KioskState.IDLE
    assert only(effects, ScheduleRetry) == []
    assert only(effects, StartLeave) == []  # the call is already gone
    assert led(effects) is LedPattern.IDLE
    reason = ending.reason  # type: ignore[union-attr]
    assert status(effects) == f"Call ended ({reason}). Press to join Boardroom"
    assert m.last_reason == reason


def test_disconnect_in_call_retries() -> None:
    m = machine_in(KioskState.IN_CALL)
    effects = m.handle(Disconnected("ice failed"))
    assert m.state is KioskState.ERROR
    assert only(effects, ScheduleRetry) == [ScheduleRetry(2.0, 1)]
    assert "ice failed" in status(effects)


def test_leaving_ends_only_with_left() -> None:
    m = machine_in(KioskState.LEAVING)
    for event in ALL_INPUTS:
        if not isinstance(event, Left):
            assert m.handle(event) == []
    assert m.state is KioskState.LEAVING
    m.handle(Left())
    assert m.state is KioskState.IDLE


# --- errors and retries ----------------------------------------------------------------------


def test_join_failure_schedules_retry_and_timer_rejoins() -> None:
    m = machine_in(KioskState.JOINING, KioskPolicy(room="R"))
    effects = m.handle(JoinFailed("token refused"))
    assert effects[0] == ScheduleRetry(2.0, 1)
    assert led(effects) is LedPattern.ERROR
    assert status(effects) == "Not connected: token refused. Retrying in 2 s; press to retry now"
    effects = m.handle(RetryTimerFired(1))
    assert effects[0] == StartJoin(attempt=2)
    assert status(effects) == "Joining R (attempt 2)"


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = KioskPolicy(retry_initial=1.0, retry_factor=2.0, retry_max=10.0)
    m = machine_in(KioskState.JOINING, policy)
    delays = []
    for _ in range(8):
        retry = m.handle(JoinFailed("down"))[0]
        assert isinstance(retry, ScheduleRetry)
        delays.append(retry.delay)
        assert m.handle(RetryTimerFired(retry.generation))[0] == StartJoin(len(delays) + 1)
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]


def test_backoff_does_not_overflow_after_a_long_outage() -> None:
    policy = KioskPolicy(retry_initial=1.0, retry_factor=10.0, retry_max=60.0)
    assert policy.retry_delay(10_000) == 60.0


def test_success_resets_the_backoff() -> None:
    m = machine_in(KioskState.JOINING)
    for _ in range(3):
        retry = m.handle(JoinFailed("down"))[0]
        assert isinstance(retry, ScheduleRetry)
        m.handle(RetryTimerFired(retry.generation))
    m.handle(JoinSucceeded())
    m.handle(JoinPressed())
    m.handle(Left())
    m.handle(JoinPressed())
    assert m.handle(JoinFailed("down"))[0] == ScheduleRetry(2.0, 4)


def test_max_retries_then_error_waits_for_a_press() -> None:
    m = machine_in(KioskState.JOINING, KioskPolicy(max_retries=2))
    scheduled = []
    for _ in range(5):
        effects = m.handle(JoinFailed("down"))
        scheduled += only(effects, ScheduleRetry)
        if not m.retry_pending:
            break
        retry = scheduled[-1]
        assert isinstance(retry, ScheduleRetry)
        m.handle(RetryTimerFired(retry.generation))
    assert len(scheduled) == 2
    assert m.state is KioskState.ERROR and not m.retry_pending
    assert status(effects) == "Not connected: down. Press to retry"
    assert m.handle(RetryTimerFired(2)) == []  # the last timer already fired
    assert m.handle(JoinPressed())[0] == StartJoin(attempt=1)


def test_max_retries_zero_never_retries() -> None:
    m = machine_in(KioskState.JOINING, KioskPolicy(max_retries=0))
    effects = m.handle(JoinFailed("down"))
    assert only(effects, ScheduleRetry) == []
    assert m.state is KioskState.ERROR


def test_press_in_error_retries_now_and_cancels_timer() -> None:
    m = machine_in(KioskState.ERROR)
    effects = m.handle(JoinPressed())
    assert effects[:2] == [CancelRetry(), StartJoin(attempt=1)]
    assert m.state is KioskState.JOINING
    # The cancelled timer may still fire; it must not start a second join.
    assert m.handle(RetryTimerFired(1)) == []
    # A new failure schedules a new generation with a fresh backoff.
    assert m.handle(JoinFailed("again"))[0] == ScheduleRetry(2.0, 3)
    assert m.handle(RetryTimerFired(1)) == []
    assert m.handle(RetryTimerFired(3))[0] == StartJoin(attempt=2)


def test_long_press_in_error_gives_up() -> None:
    m = machine_in(KioskState.ERROR)
    effects = m.handle(LongPressed())
    assert effects[0] == CancelRetry()
    assert m.state is KioskState.IDLE
    assert status(effects) == "Press to join Boardroom"
    assert m.handle(RetryTimerFired(1)) == []
    assert m.state is KioskState.IDLE


@pytest.mark.parametrize("state", list(KioskState))
def test_stale_timers_are_ignored_everywhere_but_error(state: KioskState) -> None:
    m = machine_in(state)
    for generation in (0, 2, 99):
        assert m.handle(RetryTimerFired(generation)) == []
    assert m.state is state


@pytest.mark.parametrize("state", [KioskState.IDLE, KioskState.IN_CALL, KioskState.ERROR])
@pytest.mark.parametrize("outcome", [JoinSucceeded(), JoinFailed("late"), Left()])
def test_outcomes_without_an_operation_are_ignored(state: KioskState, outcome: KioskInput) -> None:
    m = machine_in(state)
    assert m.handle(outcome) == []
    assert m.state is state


@pytest.mark.parametrize(
    "kwargs",
    [
        {"retry_initial": 0},
        {"retry_factor": 0.5},
        {"retry_initial": 5, "retry_max": 1},
        {"max_retries": -1},
        {"retry_initial": float("nan")},
    ],
)
def test_bad_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        KioskPolicy(**kwargs)  # type: ignore[arg-type]


# --- random sequences ------------------------------------------------------------------------

policies = st.builds(
    KioskPolicy,
    leave_on=st.sampled_from(LeaveOn),
    start_muted=st.booleans(),
    retry_initial=st.floats(0.1, 5),
    retry_factor=st.floats(1, 4),
    retry_max=st.floats(5, 120),
    max_retries=st.none() | st.integers(0, 6),
)


class KioskSequences(RuleBasedStateMachine):
    """Drives the machine like a daemon would (plus stale and spurious inputs) and checks
    the invariants after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.m = KioskMachine()
        self.join_in_flight = False
        self.leave_in_flight = False
        self.timer: int | None = None  # generation of the live retry timer
        self.stale_timers: set[int] = {0}
        self.sequence_delays: list[float] = []
        self.led = LedPattern.IDLE

    @initialize(policy=policies)
    def start(self, policy: KioskPolicy) -> None:
        self.m = KioskMachine(policy)
        self.carry_out(self.m.initial_effects(), before=KioskState.IDLE)

    def send(self, event: KioskInput) -> list[KioskEffect]:
        before = self.m.state
        effects = self.m.handle(event)
        self.carry_out(effects, before)
        return effects

    def carry_out(self, effects: list[KioskEffect], before: KioskState) -> None:
        """Apply effects to the simulated daemon, checking each against the rules."""
        policy = self.m.policy
        changed = self.m.state is not before
        if changed or before is KioskState.IN_CALL:
            # every state change (and every mute toggle) shows itself
            assert effects == [] or (only(effects, SetLed) and only(effects, ShowStatus))
        for effect in effects:
            if isinstance(effect, StartJoin):
                assert not self.join_in_flight, "two joins in flight"
                assert not self.leave_in_flight, "join while leaving"
                self.join_in_flight = True
                if effect.attempt == 1:
                    self.sequence_delays = []
                assert effect.attempt == len(self.sequence_delays) + 1
            elif isinstance(effect, StartLeave):
                assert before is KioskState.IN_CALL
                assert not self.leave_in_flight and not self.join_in_flight
                self.leave_in_flight = True
            elif isinstance(effect, SetMute):
                assert self.m.state is KioskState.IN_CALL, "mute outside a call"
            elif isinstance(effect, ScheduleRetry):
                assert self.m.state is KioskState.ERROR
                assert policy.retry_initial <= effect.delay <= policy.retry_max
                if self.sequence_delays:
                    assert effect.delay >= self.sequence_delays[-1], "backoff shrank"
                self.sequence_delays.append(effect.delay)
                if policy.max_retries is not None:
                    assert len(self.sequence_delays) <= policy.max_retries
                if self.timer is not None:
                    self.stale_timers.add(self.timer)
                assert effect.generation not in self.stale_timers
                self.timer = effect.generation
            elif isinstance(effect, CancelRetry):
                assert self.timer is not None, "cancel without a timer"
                self.stale_timers.add(self.timer)
                self.timer = None
            elif isinstance(effect, SetLed):
                self.led = effect.pattern

    # user input, at any time
    @rule(press=st.sampled_from([JoinPressed(), LongPressed(), MutePressed()]))
    def press(self, press: KioskInput) -> None:
        before = self.m.state
        effects = self.send(press)
        if before in (KioskState.JOINING, KioskState.LEAVING):
            assert effects == [] and self.m.state is before

    # outcomes of the operations the machine started
    @precondition(lambda self: self.join_in_flight)
    @rule(ok=st.booleans(), reason=st.text(max_size=20))
    def join_outcome(self, ok: bool, reason: str) -> None:
        self.join_in_flight = False
        if ok:
            self.sequence_delays = []  # a success ends the backoff sequence
        self.send(JoinSucceeded() if ok else JoinFailed(reason))
        assert self.m.state in (KioskState.IN_CALL, KioskState.ERROR)

    @precondition(lambda self: self.leave_in_flight)
    @rule()
    def leave_outcome(self) -> None:
        self.leave_in_flight = False
        self.send(Left())
        assert self.m.state is KioskState.IDLE

    @precondition(lambda self: self.timer is not None)
    @rule()
    def timer_fires(self) -> None:
        assert self.timer is not None
        generation, self.timer = self.timer, None
        self.stale_timers.add(generation)
        effects = self.send(RetryTimerFired(generation))
        assert only(effects, StartJoin), "a live timer must start a join"

    @precondition(lambda self: self.join_in_flight)
    @rule(failures=st.integers(1, 12))
    def outage(self, failures: int) -> None:
        """A run of failed joins, each retried by its timer: reaches the backoff cap."""
        for _ in range(failures):
            self.join_outcome(ok=False, reason="outage")
            if self.timer is None:
                break  # retries exhausted
            self.timer_fires()

    # the room going away, and spurious or stale inputs
    @rule(event=st.sampled_from([RoomEnded(), Kicked("host"), Disconnected("network")]))
    def remote_end(self, event: KioskInput) -> None:
        before = self.m.state
        effects = self.send(event)
        if before is not KioskState.IN_CALL:
            assert effects == []

    @precondition(lambda self: not self.join_in_flight and not self.leave_in_flight)
    @rule(event=st.sampled_from([JoinSucceeded(), JoinFailed("late"), Left()]))
    def spurious_outcome(self, event: KioskInput) -> None:
        before = self.m.state
        assert self.send(event) == []
        assert self.m.state is before

    @rule(data=st.data())
    def stale_timer(self, data: st.DataObject) -> None:
        generation = data.draw(st.sampled_from(sorted(self.stale_timers)))
        before = self.m.state
        assert self.send(RetryTimerFired(generation)) == []
        assert self.m.state is before

    @invariant()
    def operations_match_state(self) -> None:
        assert self.join_in_flight == (self.m.state is KioskState.JOINING)
        assert self.leave_in_flight == (self.m.state is KioskState.LEAVING)

    @invariant()
    def mute_only_in_call(self) -> None:
        assert not self.m.muted or self.m.state is KioskState.IN_CALL

    @invariant()
    def retry_only_in_error(self) -> None:
        assert self.m.retry_pending == (self.timer is not None)
        assert not self.m.retry_pending or self.m.state is KioskState.ERROR

    @invariant()
    def led_shows_state(self) -> None:
        expected = {
            KioskState.IDLE: {LedPattern.IDLE},
            KioskState.JOINING: {LedPattern.JOINING},
            KioskState.IN_CALL: {LedPattern.IN_CALL, LedPattern.IN_CALL_MUTED},
            KioskState.LEAVING: {LedPattern.LEAVING},
            KioskState.ERROR: {LedPattern.ERROR},
        }[self.m.state]
        assert self.led in expected
        if self.m.state is KioskState.IN_CALL:
            assert (self.led is LedPattern.IN_CALL_MUTED) == self.m.muted


KioskSequences.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_kiosk_sequences = KioskSequences.TestCase
