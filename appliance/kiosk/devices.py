"""The kiosk's hardware: camera layers, microphone, speaker, buttons and LEDs.

Each part is opened on its own; a part that is missing (no camera, no sound card) leaves the
kiosk running without it and is recorded in ``DaemonStatus.degraded`` with the reason, for the
status line, the LED error pattern and the status page. Device threads reach the event loop
through one ``ThreadBridge`` each; nothing here blocks the loop except opening devices,
which happens once at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from edge_common.bridge import ThreadBridge
from hardware.audio.capture import AudioCapture, AudioEvent, OpusPacket
from hardware.audio.devices import AudioError, AudioSpec
from hardware.audio.playback import AudioPlayback
from hardware.camera.base import AccessUnit, CameraEvent, CameraSpec, SourceError, VideoSource
from hardware.camera.select import open_camera
from hardware.errors import HardwareError
from hardware.gpio.buttons import ButtonPanel, ButtonSpec
from hardware.gpio.debounce import ButtonEvent, ButtonEventKind, DebounceConfig
from hardware.gpio.factory import make_pin_factory
from hardware.gpio.leds import LedSpec, LedState, StatusLeds

from ..settings import Settings
from .events import LedPattern

log = logging.getLogger(__name__)

LED_STATES = {
    LedPattern.IDLE: LedState.IDLE,
    LedPattern.JOINING: LedState.CONNECTING,
    LedPattern.IN_CALL: LedState.IN_CALL,
    LedPattern.IN_CALL_MUTED: LedState.MUTED,
    LedPattern.LEAVING: LedState.CONNECTING,
    LedPattern.ERROR: LedState.ERROR,
}


@dataclass
class DeviceSinks:
    """Where the devices' events go, on the event loop. Swapped as calls come and go."""

    video: Callable[[AccessUnit], None] | None = None
    audio: Callable[[OpusPacket], None] | None = None
    pcm: Callable[[bytes], None] | None = None


class DeviceUse:
    """One user of the camera and microphone: a call, or a field unit's local recording.

    A kiosk has one user at a time; a field unit records locally while its call to the hub
    is being re-made, so two can overlap. Each use has its own sinks and wanted layers; the
    devices capture while any use has started media and encode the union of the layers
    wanted, so one use stopping never cuts the other's picture.
    """

    def __init__(self, devices: KioskDevices) -> None:
        self._devices = devices
        self.sinks = DeviceSinks()
        self.wanted: frozenset[str] = frozenset()
        self.media = False

    @property
    def camera(self) -> VideoSource | None:
        """The camera (None when missing)."""
        return self._devices.camera

    @property
    def capture(self) -> AudioCapture | None:
        """The microphone (None when missing)."""
        return self._devices.capture

    def set_wanted_layers(self, wanted: frozenset[str]) -> None:
        """The layers this use receives; the devices encode every use's together."""
        added = wanted - self.wanted
        self.wanted = wanted
        self._devices.apply_wanted_layers(added)

    def request_keyframe(self, layer: str) -> None:
        """This use needs a keyframe of ``layer``."""
        self._devices.request_keyframe(layer)

    async def start_media(self) -> None:
        """Start capturing for this use (a no-op for the devices when another use runs)."""
        self.media = True
        await self._devices.start_media()

    def release(self) -> None:
        """This use is done: its sinks and layers go, capture stops if no other use runs.
        Idempotent."""
        self._devices.release(self)


class KioskDevices:
    """Owns the kiosk's devices for the daemon's lifetime."""

    def __init__(
        self,
        settings: Settings,
        camera: CameraSpec | None,
        audio: AudioSpec | None,
        *,
        on_press: Callable[[str, bool], object],  # whether acted on: not needed here
        on_problem: Callable[[str, str], None],
    ) -> None:
        self._settings = settings
        self._camera_spec = camera
        self._audio_spec = audio
        self._on_press = on_press
        self._on_problem = on_problem
        self._uses: list[DeviceUse] = []
        self._running = False  # capture started for some use (on the worker's order)
        self.camera: VideoSource | None = None
        self.capture: AudioCapture | None = None
        self.playback: AudioPlayback | None = None
        self.buttons: ButtonPanel | None = None
        self.leds: StatusLeds | None = None
        self._pin_factory: Any = None
        #: The latest keyframe of each layer, for the status page's snapshot.
        self.keyframes: dict[str, AccessUnit] = {}
        #: The microphone's peak over its latest period (0 to 32767) and when (monotonic).
        self.mic_peak = 0
        self.mic_peak_at = 0.0
        self._bridges: list[ThreadBridge[Any]] = []
        # Starting and stopping devices joins threads and opens files: never on the loop.
        # One worker keeps them in order (a stop is done before the next start begins).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devices")
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open every part that is configured; record the ones that are missing."""
        self._loop = loop
        camera_bridge: ThreadBridge[CameraEvent] = ThreadBridge(loop, self._camera_event)
        audio_bridge: ThreadBridge[AudioEvent] = ThreadBridge(loop, self._audio_event)
        pcm_bridge: ThreadBridge[bytes] = ThreadBridge(loop, self._pcm)
        button_bridge: ThreadBridge[ButtonEvent] = ThreadBridge(loop, self._button_event)
        self._bridges = [camera_bridge, audio_bridge, pcm_bridge, button_bridge]
        self._open_camera(camera_bridge.post)
        self._open_audio(audio_bridge.post, pcm_bridge.post)
        self._open_gpio(button_bridge.post)

    def close(self) -> None:
        """Stop and release everything. Idempotent."""
        self._worker.shutdown(wait=True)
        for bridge in self._bridges:
            bridge.close()
        for part in (self.camera, self.capture, self.playback, self.buttons, self.leds):
            if part is not None:
                try:
                    part.close()
                except Exception:  # one broken device must not keep the others open
                    log.exception("closing %s failed", type(part).__name__)
        self.camera = self.capture = self.playback = None
        self.buttons = self.leds = None
        if self._pin_factory is not None:
            self._pin_factory.close()
            self._pin_factory = None

    # -- parts -----------------------------------------------------------------------------

    def _open_camera(self, post: Callable[[CameraEvent], None]) -> None:
        if self._camera_spec is None:
            self._on_problem("camera", "turned off in config")
            return
        try:
            self.camera = open_camera(self._camera_spec, post)
        except HardwareError as exc:
            self._on_problem("camera", str(exc))

    def _open_audio(self, post: Callable[[AudioEvent], None], pcm: Callable[[bytes], None]) -> None:
        if self._audio_spec is None:
            self._on_problem("audio", "turned off in config")
            return
        spec = self._audio_spec
        try:
            self.playback = AudioPlayback(spec, on_error=post)
            self.playback.start()
        except HardwareError as exc:
            self.playback = None
            self._on_problem("speaker", str(exc))
        self.set_volume(self._settings.audio.volume)
        # Capture opens its device now, to report a missing microphone at start-up.
        try:
            self.capture = AudioCapture(spec, post, on_pcm=pcm)
            self.capture.start()
            self.capture.stop()
        except HardwareError as exc:
            self.capture = None
            self._on_problem("microphone", str(exc))

    def _open_gpio(self, post: Callable[[ButtonEvent], None]) -> None:
        g = self._settings.gpio
        try:
            self._pin_factory, reason = make_pin_factory(g.pin_factory)
            log.info("gpio: %s", reason)
            timing = DebounceConfig(long_press_s=g.long_press_seconds)
            buttons = [
                ButtonSpec("join", g.join_button, active_low=g.active_low, timing=timing),
                ButtonSpec("mute", g.mute_button, active_low=g.active_low, timing=timing),
            ]
            self.buttons = ButtonPanel(buttons, post, pin_factory=self._pin_factory)
            self.leds = StatusLeds(LedSpec(g.status_led, g.mute_led), self._pin_factory)
        except (HardwareError, ImportError) as exc:
            self._on_problem("gpio", str(exc))

    # -- events (on the loop) --------------------------------------------------------------

    def _camera_event(self, event: CameraEvent) -> None:
        if isinstance(event, SourceError):
            self._on_problem("camera", event.message)
            return
        if event.keyframe:
            self.keyframes[event.layer] = event
        for use in self._uses:
            if use.sinks.video is not None:
                use.sinks.video(event)

    def _audio_event(self, event: AudioEvent) -> None:
        if isinstance(event, AudioError):
            self._on_problem("audio", event.message)
            return
        for use in self._uses:
            if use.sinks.audio is not None:
                use.sinks.audio(event)

    def _pcm(self, pcm: bytes) -> None:
        import numpy as np

        samples = np.frombuffer(pcm, dtype=np.int16)
        self.mic_peak = int(np.abs(samples.astype(np.int32)).max()) if len(samples) else 0
        self.mic_peak_at = time.monotonic()
        for use in self._uses:
            if use.sinks.pcm is not None:
                use.sinks.pcm(pcm)

    def _button_event(self, event: ButtonEvent) -> None:
        if event.kind is ButtonEventKind.PRESS:
            self._on_press(event.button, False)
        elif event.kind is ButtonEventKind.LONG_PRESS:
            self._on_press(event.button, True)
        elif event.kind is ButtonEventKind.STUCK:
            self._on_problem(f"{event.button} button", f"held for {event.held_s:.0f} s (stuck?)")
        else:
            log.warning("%s button: press storm ignored", event.button)

    # -- control ---------------------------------------------------------------------------

    def show(self, pattern: LedPattern) -> None:
        """Show a kiosk state on the LEDs."""
        if self.leds is not None:
            self.leds.set_state(LED_STATES[pattern])

    def use(self) -> DeviceUse:
        """A new user of the camera and microphone (see ``DeviceUse``)."""
        use = DeviceUse(self)
        self._uses.append(use)
        return use

    def release(self, use: DeviceUse) -> None:
        """``use`` is done: its media stops, and it receives nothing more."""
        if use in self._uses:
            self._uses.remove(use)
        use.sinks = DeviceSinks()
        use.media = False
        use.wanted = frozenset()
        self.apply_wanted_layers()
        self.stop_media()

    async def start_media(self) -> None:
        """Start camera and microphone on the device worker; returns once they run.

        When they already run for another use, nothing restarts (that use keeps its picture).
        """
        if self._running:
            return
        self._running = True
        await asyncio.get_running_loop().run_in_executor(self._worker, self._start_media)

    def stop_media(self) -> None:
        """Stop camera and microphone on the device worker once no use has media (between
        calls nothing is captured).

        Returns at once; the next ``start_media`` runs only after this stop is done.
        """
        if not self._running or any(use.media for use in self._uses):
            return
        self._running = False
        with contextlib.suppress(RuntimeError):  # closed: close() stops everything anyway
            self._worker.submit(self._stop_media)

    def _start_media(self) -> None:
        if self.camera is not None:
            for layer in self.camera.spec.layers:
                self.camera.stop_layer(layer.name)
            self._guard("camera", self.camera.start)
        if self.capture is not None:
            self._guard("microphone", self.capture.start)

    def _stop_media(self) -> None:
        if self.camera is not None:
            self._guard("camera", self.camera.stop)
            self._forget_keyframes()
        if self.capture is not None:
            self._guard("microphone", self.capture.stop)

    def _forget_keyframes(self) -> None:
        if self._loop is not None:  # on the worker: the dict belongs to the loop
            with contextlib.suppress(RuntimeError):  # the loop is closing: nothing to show
                self._loop.call_soon_threadsafe(self.keyframes.clear)

    def snapshot_source(self) -> AccessUnit:
        """The latest keyframe of the smallest layer that is being encoded now.

        ``LookupError`` with the reason when no layer runs (no camera, or nobody receives it).
        """
        camera = self.camera
        if camera is None:
            raise LookupError("There is no camera.")
        running = [
            layer
            for layer in camera.spec.layers
            if camera.running and camera.layer_active(layer.name) and layer.name in self.keyframes
        ]
        if not running:
            raise LookupError(
                "No camera layer is running: the camera is encoded only while someone in a call "
                "receives it."
            )
        smallest = min(running, key=lambda layer: layer.width * layer.height)
        return self.keyframes[smallest.name]

    def apply_wanted_layers(self, added: frozenset[str] = frozenset()) -> None:
        """Encode exactly the layers some use receives; ``added`` are new to one use, which
        gets a keyframe of each that was already being encoded for another."""
        if self.camera is None:
            return
        wanted = frozenset().union(*(use.wanted for use in self._uses))
        for layer in self.camera.spec.layers:
            if layer.name in wanted and not self.camera.layer_active(layer.name):
                self.camera.start_layer(layer.name)  # starts with a keyframe
            elif layer.name not in wanted and self.camera.layer_active(layer.name):
                self.camera.stop_layer(layer.name)
                self.keyframes.pop(layer.name, None)
            elif layer.name in added and self.camera.running:
                self.camera.request_keyframe(layer.name)

    def request_keyframe(self, layer: str) -> None:
        """A subscriber needs a keyframe of ``layer``."""
        if self.camera is not None and self.camera.layer_active(layer):
            self.camera.request_keyframe(layer)

    def set_volume(self, percent: int) -> None:
        """Set the speaker volume where the card has a mixer control (many have none)."""
        if self.playback is None:
            return
        try:
            self.playback.set_volume(percent)
        except HardwareError as exc:
            log.info("speaker volume stays at the card's level: %s", exc)

    def play(self, pcm: bytes) -> None:
        """Queue mixed PCM on the speaker."""
        if self.playback is not None:
            self.playback.push(pcm)

    def _guard(self, part: str, action: Callable[[], None]) -> None:
        """Run a device action on the worker; report a failure on the loop."""
        try:
            action()
        except HardwareError as exc:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._on_problem, part, str(exc))
