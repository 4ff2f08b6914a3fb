"""The kiosk runner: effects become tasks and timers, outcomes come back as inputs."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

import pytest

from appliance.kiosk.events import Disconnected, Kicked, LedPattern, RoomEnded
from appliance.kiosk.runner import KioskActions, KioskRunner
from appliance.kiosk.state import KioskMachine, KioskPolicy, KioskState

FAST = KioskPolicy(room="R", retry_initial=0.02, retry_factor=2, retry_max=0.1)


class FakeCall:
    """Stands in for the daemon's call: scripted join outcomes, recorded actions."""

    def __init__(self) -> None:
        self.outcomes: collections.deque[object] = collections.deque()
        self.joins: list[int] = []
        self.leaves = 0
        self.mutes: list[bool] = []
        self.leds: list[LedPattern] = []
        self.statuses: list[str] = []
        self.join_cancelled = 0
        self.leave_delay = 0.0

    async def join(self, attempt: int) -> None:
        self.joins.append(attempt)
        outcome = self.outcomes.popleft() if self.outcomes else None
        try:
            if outcome == "hang":
                await asyncio.Event().wait()
            elif isinstance(outcome, float):
                await asyncio.sleep(outcome)
        except asyncio.CancelledError:
            self.join_cancelled += 1
            raise
        if isinstance(outcome, Exception):
            raise outcome

    async def leave(self) -> None:
        await asyncio.sleep(self.leave_delay)
        self.leaves += 1

    def actions(self) -> KioskActions:
        return KioskActions(
            join=self.join,
            leave=self.leave,
            set_mute=self.mutes.append,
            set_led=self.leds.append,
            show_status=self.statuses.append,
        )


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


@pytest.fixture
def call() -> FakeCall:
    return FakeCall()


async def make_runner(call: FakeCall, policy: KioskPolicy = FAST, **kw: float) -> KioskRunner:
    runner = KioskRunner(KioskMachine(policy), call.actions(), **kw)
    await runner.start()
    return runner


async def test_start_shows_idle(call: FakeCall) -> None:
    runner = await make_runner(call)
    assert call.leds == [LedPattern.IDLE]
    assert call.statuses == ["Press to join R"]
    assert runner.status == "Press to join R"
    await runner.close()


async def test_press_joins_mute_toggles_press_again_leaves(call: FakeCall) -> None:
    runner = await make_runner(call)
    runner.press("join")
    await until(lambda: runner.state is KioskState.IN_CALL)
    assert call.joins == [1] and call.mutes == [False]
    assert call.leds[-1] is LedPattern.IN_CALL
    runner.press("mute")
    assert call.mutes == [False, True] and call.leds[-1] is LedPattern.IN_CALL_MUTED
    runner.press("join")
    await until(lambda: runner.state is KioskState.IDLE)
    assert call.leaves == 1
    assert call.statuses[-1] == "Press to join R"
    await runner.close()
    assert call.leaves == 1  # nothing left to leave


async def test_a_storm_of_presses_makes_one_join(call: FakeCall) -> None:
    call.outcomes.append(0.05)
    runner = await make_runner(call)
    for _ in range(50):
        runner.press("join")
        runner.press("join", long=True)
        runner.press("mute")
    await until(lambda: runner.state is KioskState.IN_CALL)
    assert call.joins == [1]
    assert call.mutes == [False]
    await runner.close()


async def test_failed_join_retries_with_backoff(call: FakeCall) -> None:
    call.outcomes.extend([ConnectionRefusedError("refused"), RuntimeError(""), None])
    runner = await make_runner(call)
    runner.press("join")
    await until(lambda: runner.state is KioskState.IN_CALL)
    assert call.joins == [1, 2, 3]
    error_lines = [s for s in call.statuses if s.startswith("Not connected")]
    assert error_lines[0].startswith("Not connected: refused.")
    assert error_lines[1].startswith("Not connected: RuntimeError.")  # empty message
    await runner.close()


async def test_a_join_that_hangs_times_out_and_is_cancelled(call: FakeCall) -> None:
    call.outcomes.extend(["hang", None])
    runner = await make_runner(call, join_timeout=0.05)
    runner.press("join")
    await until(lambda: runner.state is KioskState.IN_CALL)
    assert call.joins == [1, 2]
    assert call.join_cancelled == 1
    assert any("no answer in 0.05 s" in s for s in call.statuses)
    await runner.close()


@pytest.mark.parametrize("ending", [RoomEnded(), Kicked("removed")])
async def test_room_ending_returns_to_idle_without_leaving(call: FakeCall, ending: object) -> None:
    runner = await make_runner(call)
    runner.press("join")
    await until(lambda: runner.state is KioskState.IN_CALL)
    runner.feed(ending)  # type: ignore[arg-type]
    assert runner.state is KioskState.IDLE
    await asyncio.sleep(0.15)  # longer than any retry: nothing rejoins on its own
    assert call.joins == [1] and call.leaves == 0
    await runner.close()


async def test_a_dropped_call_rejoins(call: FakeCall) -> None:
    runner = await make_runner(call)
    runner.press("join")
    await until(lambda: runner.state is KioskState.IN_CALL)
    runner.feed(Disconnected("ice failed"))
    assert runner.state is KioskState.ERROR
    await until(lambda: runner.state is KioskState.IN_CALL)
    assert call.joins == [1, 2]
    await runner.close()


async def test_long_press_in_error_gives_up_and_the_timer_never_fires(call: FakeCall) -> None:
    call.outcomes.append(RuntimeError("down"))
    runner = await make_runner(call, KioskPolicy(retry_initial=0.05, retry_max=0.05))
    runner.press("join")
    await until(lambda: runner.state is KioskState.ERROR)
    runner.press("join", long=True)
    assert runner.state is KioskState.IDLE
    await asyncio.sleep(0.2)
    assert call.joins == [1]
    await runner.close()


async def test_close_in_a_call_leaves_it(call: FakeCall) -> None:
    runner = await make_runner(call)
    runner.press("join")
    await until(lambda: runner.state is KioskState.IN_CALL)
    await runner.close()
    assert call.leaves == 1
    runner.press("join")  # ignored once closed
    await asyncio.sleep(0.05)
    assert call.joins == [1]


async def test_close_during_a_join_cancels_it_and_leaves(call: FakeCall) -> None:
    call.outcomes.append("hang")
    runner = await make_runner(call)
    runner.press("join")
    await until(lambda: call.joins == [1])
    async with asyncio.timeout(5):
        await runner.close()
    assert call.join_cancelled == 1
    assert call.leaves == 1


async def test_close_lets_a_leave_in_flight_finish(call: FakeCall) -> None:
    call.leave_delay = 0.05
    runner = await make_runner(call)
    runner.press("join")
    await until(lambda: runner.state is KioskState.IN_CALL)
    runner.press("join")
    assert runner.state is KioskState.LEAVING
    async with asyncio.timeout(5):
        await runner.close()
    assert call.leaves == 1


async def test_close_cancels_a_pending_retry(call: FakeCall) -> None:
    call.outcomes.append(RuntimeError("down"))
    runner = await make_runner(call, KioskPolicy(retry_initial=0.05, retry_max=0.05))
    runner.press("join")
    await until(lambda: runner.state is KioskState.ERROR)
    await runner.close()
    await asyncio.sleep(0.2)
    assert call.joins == [1]
    assert call.leaves == 0


async def test_a_slow_leave_is_abandoned_after_its_deadline(call: FakeCall) -> None:
    call.leave_delay = 10
    runner = await make_runner(call, leave_timeout=0.05)
    runner.press("join")
    await until(lambda: runner.state is KioskState.IN_CALL)
    runner.press("join")
    await until(lambda: runner.state is KioskState.IDLE)
    await runner.close()


async def test_a_broken_led_does_not_break_the_call(
    call: FakeCall, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_led(pattern: LedPattern) -> None:
        raise OSError("GPIO gone")

    actions = call.actions()
    actions.set_led = broken_led
    runner = KioskRunner(KioskMachine(FAST), actions)
    await runner.start()
    runner.press("join")
    await until(lambda: runner.state is KioskState.IN_CALL)
    assert "GPIO gone" in caplog.text
    await runner.close()


async def test_reentrant_feed_is_applied_in_order(call: FakeCall) -> None:
    """An action that reports back synchronously must not interleave effects."""
    runner: KioskRunner | None = None
    order: list[str] = []

    def status(text: str) -> None:
        order.append(text)
        if text.startswith("In call") and runner is not None and "muted" not in text:
            runner.press("mute")  # feeds while the runner is still applying effects

    actions = call.actions()
    actions.show_status = status
    runner = KioskRunner(KioskMachine(FAST), actions)
    await runner.start()
    runner.press("join")
    await until(lambda: runner is not None and runner.machine.muted)
    assert order[-2:] == ["In call R", "In call R (muted)"]
    await runner.close()
