"""The kiosk role: buttons drive the call state machine; its effects drive the call.

``KioskMachine`` decides (pure); this module carries out its effects on the event loop:
joins and leaves run as tasks, retries as loop timers, LEDs and the status line follow
every change. Presses arrive from GPIO, the control socket and the status page alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from edge_common.lifecycle import TaskSet
from edge_sfu.rooms import events as ev
from edge_sfu.signaling import SignalingService

from ..mapping import call_identity
from ..state import DaemonState
from . import events as ke
from .devices import KioskDevices
from .mixer import AudioMixer
from .state import KioskMachine

if TYPE_CHECKING:
    from .call import Call

log = logging.getLogger(__name__)

#: A join that has not completed by then counts as failed (and is retried).
JOIN_TIMEOUT = 20.0
#: Removals someone meant (no automatic rejoin), as the room service reports them.
KICK_CODES = frozenset({ev.REMOVED_BY_REST, ev.DUPLICATE_IDENTITY, ev.SESSION_LENGTH_EXCEEDED})
#: A microphone level older than this means the microphone is not being captured.
MIC_LEVEL_STALE_S = 1.0
#: How long the speaker test tone lasts.
TEST_TONE_S = 1.0


class KioskRole:
    """Runs the kiosk for the daemon's lifetime."""

    def __init__(
        self,
        state: DaemonState,
        machine: KioskMachine,
        devices: KioskDevices,
        signaling: Callable[[], SignalingService],
    ) -> None:
        self._state = state
        self._machine = machine
        self._devices = devices
        self._signaling = signaling
        self._mixer = AudioMixer(devices.play, state.settings.audio.period_ms)
        self._call: Call | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._tasks = TaskSet("kiosk role")

    async def start(self) -> None:
        """Open the devices, show the idle state, accept presses."""
        loop = asyncio.get_running_loop()
        self._devices.open(loop)
        self._mixer.start()
        self._apply(self._machine.initial_effects())
        self._state.press_handler = self.press
        self._state.media_stats = self.media_stats
        self._state.operator = self

    def media_stats(self) -> dict[str, Any]:
        """Per camera layer: encoding or not, frames and keyframes so far; speaker counters."""
        out: dict[str, Any] = {
            "mixed_periods": self._mixer.periods_mixed,
            "input_peaks": self._mixer.levels(),
        }
        camera = self._devices.camera
        if camera is not None:
            layers = {}
            for layer in camera.spec.layers:
                stats = camera.stats(layer.name)
                layers[layer.name] = {
                    "encoding": camera.layer_active(layer.name) and camera.running,
                    "frames": stats.frames,
                    "keyframes": stats.keyframes,
                    "size": f"{layer.width}x{layer.height}",
                }
            out["camera_layers"] = layers
        playback = self._devices.playback
        if playback is not None:
            out["speaker"] = {"periods": playback.periods_written, "underruns": playback.underruns}
        return out

    # -- operator tools (the admin status page) ---------------------------------------------

    def mic_level(self) -> dict[str, Any]:
        """The microphone's peak over its latest period, as the capture path measured it."""
        devices = self._devices
        if devices.capture is None:
            return {"available": False, "reason": "There is no microphone.", "peak": 0}
        age = time.monotonic() - devices.mic_peak_at
        if age > MIC_LEVEL_STALE_S:
            reason = "The microphone is captured only in a call."
            return {"available": False, "reason": reason, "peak": 0}
        return {
            "available": True,
            "reason": "",
            "peak": devices.mic_peak,
            "muted": self._machine.muted,
        }

    async def snapshot(self, image_format: str) -> bytes:
        """A still of the smallest running layer's latest keyframe (decoded in a thread)."""
        from .snapshot import still_image

        unit = self._devices.snapshot_source()
        return await asyncio.to_thread(still_image, unit, image_format)

    def test_tone(self) -> float:
        """A short tone through the mixer and the speaker, like any voice in a call."""
        if self._devices.playback is None:
            raise LookupError("There is no speaker.")
        self._mixer.add_tone("test-tone", TEST_TONE_S)
        log.info("speaker test tone (%.1f s)", TEST_TONE_S)
        return TEST_TONE_S

    async def leave_for_shutdown(self) -> None:
        """Leave the call while signaling still runs, so the others see the kiosk go."""
        self._state.press_handler = None
        if self._call is not None:
            call, self._call = self._call, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(call.leave(), 5)

    async def close(self) -> None:
        """Leave any call, stop timers and tasks, release the devices."""
        self._state.press_handler = None
        self._state.media_stats = None
        self._state.operator = None
        if self._retry is not None:
            self._retry.cancel()
        await self._tasks.close()
        if self._call is not None:
            call, self._call = self._call, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(call.leave(), 5)
        await self._mixer.close()
        self._devices.close()

    # -- inputs ----------------------------------------------------------------------------

    def press(self, button: str, long: bool = False) -> bool:
        """A button press, from any of the ways to press one; whether it was acted on.

        A press the current state ignores (one while joining or leaving) returns False.
        """
        if button == "join":
            return self.handle(ke.LongPressed() if long else ke.JoinPressed())
        if button == "mute":
            return self.handle(ke.MutePressed())
        raise ValueError(f"no button {button!r}; buttons: join, mute")

    def handle(self, event: ke.KioskInput) -> bool:
        """Feed one input to the machine and carry out what it says; whether it did anything."""
        effects = self._machine.handle(event)
        self._apply(effects)
        return bool(effects)

    # -- effects ---------------------------------------------------------------------------

    def _apply(self, effects: list[ke.KioskEffect]) -> None:
        for effect in effects:
            match effect:
                case ke.StartJoin(attempt=attempt):
                    self._tasks.spawn(self._join(attempt), name=f"kiosk-join-{attempt}")
                case ke.StartLeave():
                    self._tasks.spawn(self._leave(), name="kiosk-leave")
                case ke.SetMute(muted=muted):
                    if self._call is not None:
                        self._tasks.spawn(self._call.set_muted(muted), name="kiosk-mute")
                case ke.ScheduleRetry(delay=delay, generation=generation):
                    self._schedule_retry(delay, generation)
                case ke.CancelRetry():
                    if self._retry is not None:
                        self._retry.cancel()
                        self._retry = None
                case ke.SetLed(pattern=pattern):
                    # A part missing since start-up keeps the error pattern while idle.
                    if pattern is ke.LedPattern.IDLE and self._state.status.degraded:
                        pattern = ke.LedPattern.ERROR
                    self._devices.show(pattern)
                case ke.ShowStatus(text=text):
                    self._show(text)

    def _show(self, text: str) -> None:
        self._state.status.role_state = self._machine.state.value
        self._state.status.muted = self._machine.muted
        if self._call is not None:
            text += f", {self._call.participant_count()} participants"
        if self._state.status.degraded:
            text += " (without " + ", ".join(sorted(self._state.status.degraded)) + ")"
        self._state.status.set_line(text)

    def _schedule_retry(self, delay: float, generation: int) -> None:
        if self._retry is not None:
            self._retry.cancel()
        loop = asyncio.get_running_loop()
        self._retry = loop.call_later(delay, self.handle, ke.RetryTimerFired(generation))

    # -- join and leave --------------------------------------------------------------------

    async def _join(self, attempt: int) -> None:
        # aiortc/PyAV load on the first join press, not at start; in a thread, so the event
        # loop (watchdog, HTTP, signaling) does not stall for the import (about 0.2 s here).
        await asyncio.to_thread(importlib.import_module, f"{__package__}.call")
        try:
            call, join = await self._open_call()
            self._call = call
            await asyncio.wait_for(join, JOIN_TIMEOUT)
        except Exception as exc:  # every failure is a JoinFailed; the machine retries
            reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            log.warning("join attempt %d failed: %s", attempt, reason)
            failed, self._call = self._call, None
            if failed is not None:
                with contextlib.suppress(Exception):
                    await failed.leave()
            self.handle(ke.JoinFailed(reason))
            return
        self.handle(ke.JoinSucceeded())

    async def _open_call(self) -> tuple[Call, Awaitable[None]]:
        """A new call to the configured room and the join to await (which may raise)."""
        from .call import LocalCall, RemoteCall, fetch_remote_token, signaling_url

        kiosk = self._state.settings.kiosk
        identity = call_identity(self._state.settings)
        muted = self._machine.muted
        if kiosk.remote_url:
            token = kiosk.remote_token or await fetch_remote_token(
                kiosk.remote_url,
                kiosk.remote_api_key_sid,
                kiosk.remote_api_key_secret,
                identity,
                kiosk.room,
            )
            url = signaling_url(kiosk.remote_url)
            remote = RemoteCall(self._devices.use(), self._mixer, self._call_ended)
            return remote, remote.join(url, token, kiosk.room, muted=muted)
        local = LocalCall(self._signaling(), self._devices.use(), self._mixer, self._call_ended)
        return local, local.join(kiosk.room, identity, muted=muted)

    async def _leave(self) -> None:
        call, self._call = self._call, None
        try:
            if call is not None:
                await asyncio.wait_for(call.leave(), 10)
        except Exception as exc:  # the call is gone either way
            log.warning("leaving failed: %s", exc)
        self.handle(ke.Left())

    def _call_ended(self, reason: str, code: int | None) -> None:
        self._call = None
        if code == ev.ROOM_COMPLETED:
            self.handle(ke.RoomEnded())
        elif code in KICK_CODES:
            self.handle(ke.Kicked(reason))
        else:
            self.handle(ke.Disconnected(reason))
