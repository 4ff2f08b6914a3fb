"""The kiosk in the adaptation issue's room: its camera layers for a fast page and a capped one.

The real kiosk stack runs in the SFU's process, as on a unit: ``KioskDevices`` with the
synthetic camera encoded by libx264 in three layers (640x360, 320x180 and 160x90 at 30 fps)
and an ALSA file microphone, and the kiosk's ``LocalCall`` in the room. alice is a join page
on this host; carol is a join page in a network namespace whose link ``tbf`` caps at
400 kbit/s each way (``tests.support.three_pages``'s room, with the kiosk in bob's place).
Both pages' cameras are sharp ones (``qoe.real_camera_flag``).

alice and the kiosk alone first: what alice decodes of the kiosk is the baseline. Then carol
joins; after a 15 s settle, over a 30 s window, each page's ``getStats()`` per remote camera:

* carol decodes alice and the kiosk at 12 fps or more, each frozen 2 s or less, each at a
  smaller size than its top layer;
* alice decodes carol at 12 fps or more, and the kiosk at its top layer (640x360) at 12 fps
  or more, with 90 % or more of the share of the camera's frames she had alone. The share,
  not the rate: the camera here is libx264 in the test's own process (a unit's is the Pi's
  encoder), and on a 2-core host with two Chromiums it encodes fewer frames the busier the
  host is (30 fps alone, 23.6 in one CI window, where alice decoded 23.0 of them). What the
  room is answerable for is what reaches alice of what the camera made; both rates are in
  the report;
* the kiosk encodes exactly the layers its viewers take: its top layer for alice and the one
  carol receives (the camera's own state: a layer's encoder runs only while someone wants it),
  read each second of the window together with carol's layer, in 90 % of the samples or more
  (a switch starts the new layer before the old one stops: a moment, not a state).

Then carol's cap is lifted: she is back on the kiosk's top layer within 20 s, and the kiosk
then encodes that layer alone. Every second, the SFU's counters of the kiosk's consumer for
carol (layer, allocation, keyframe requests, losses) and carol's view of the kiosk are
logged: a failure's message carries them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from appliance.kiosk.call import LocalCall
from appliance.kiosk.devices import KioskDevices
from appliance.kiosk.mixer import AudioMixer
from appliance.settings import Settings
from edge_sfu.media import MediaSettings
from edge_sfu.stats import SubscriberCounters, track_stats
from hardware.audio.devices import AudioSpec
from hardware.camera.base import CameraLayerSpec, CameraSpec, VideoSource
from tests.support.browser import CHROMIUM, chromium, joined_page, require_chromium
from tests.support.netns import SlowHost, scratch_dir, slow_host
from tests.support.qoe import (
    CAMERA_SIZE,
    FRAME_RATE_FLOOR_FLAG,
    INBOUND_VIDEO_JS,
    Seen,
    real_camera_flag,
    report,
    until_view,
    watch,
)
from tests.support.sfu import RunningSfu, running_sfu

from .audio_files import alsa_env, write_raw_tone

pytestmark = [pytest.mark.browser, pytest.mark.timeout(480)]

CAP_KBIT = 400
SETTLE_S = 15.0
WINDOW_S = 30.0
STEP_UP_S = 20.0
#: Largest first, as a unit's ``[camera]`` lists them; the smallest declares what a kiosk's
#: 160x90 layer spends (the allocation takes a declared bitrate as a layer's cost).
LAYERS = (
    CameraLayerSpec("high", 640, 360, 600_000),
    CameraLayerSpec("mid", 320, 180, 200_000),
    CameraLayerSpec("low", 160, 90, 50_000),
)
TOP = LAYERS[0]
KIOSK = "kiosk"


def encoded_layers(camera: VideoSource) -> set[str]:
    """The layers the kiosk's camera encodes now: wanted, and with an open encoder."""
    return {
        layer.name
        for layer in camera.spec.layers
        if camera.running and camera.layer_active(layer.name) and camera.stats(layer.name).active
    }


def layer_of_width(width: int) -> str | None:
    """The kiosk layer a decoded picture ``width`` pixels wide came from."""
    return next((layer.name for layer in LAYERS if layer.width == width), None)


@dataclass
class Kiosk:
    """The kiosk's devices and its call, in this process."""

    devices: KioskDevices
    call: LocalCall
    problems: list[tuple[str, str]]

    @property
    def camera(self) -> VideoSource:
        camera = self.devices.camera
        assert camera is not None, self.problems
        return camera

    def frames(self) -> dict[str, int]:
        return {layer.name: self.camera.stats(layer.name).frames for layer in LAYERS}

    def keyframes(self) -> dict[str, int]:
        return {layer.name: self.camera.stats(layer.name).keyframes for layer in LAYERS}


@asynccontextmanager
async def kiosk_in_room(sfu: RunningSfu, directory: Path) -> AsyncIterator[Kiosk]:
    """The kiosk joined to ``room1`` of ``sfu``, as the kiosk role joins it on a press."""
    tone = directory / "kiosk-mic.raw"
    write_raw_tone(tone, 440.0, 240)
    audio = AudioSpec(
        capture_device=f"filecap:INFILE={tone}",
        playback_device=f"filesink:OUTFILE={directory / 'kiosk-speaker.raw'},FMT=raw",
    )
    camera = CameraSpec(layers=LAYERS, framerate=30.0, backend="synthetic", encoder="software")
    problems: list[tuple[str, str]] = []
    devices = KioskDevices(
        Settings(),
        camera,
        audio,
        on_press=lambda button, long: None,
        on_problem=lambda part, why: problems.append((part, why)),
    )
    devices.open(asyncio.get_running_loop())
    mixer = AudioMixer(devices.play)
    mixer.start()
    call = LocalCall(sfu.signaling, devices.use(), mixer, lambda reason, code: None)
    try:
        await call.join("room1", KIOSK, muted=False)
        yield Kiosk(devices, call, problems)
    finally:
        await call.leave()
        await mixer.close()
        devices.close()


def carol_consumers(sfu: RunningSfu, room_sid: str) -> dict[str, SubscriberCounters]:
    """What the SFU sends carol, by publisher and kind (``kiosk/video``...)."""
    room = sfu.signaling.rooms.live_room(room_sid)
    if room is None:
        return {}
    carol = next((p.sid for p in room.participants.values() if p.identity == "carol"), None)
    labels = {
        sid: f"{p.identity}/{track.kind}"
        for p in room.participants.values()
        for sid, track in p.published.items()
    }
    out: dict[str, SubscriberCounters] = {}
    for sid, track in track_stats(sfu.app).tracks.items():
        for subscriber in track.subscribers:
            if subscriber.participant_sid == carol and sid in labels:
                out[labels[sid]] = subscriber
    return out


def carol_probe(sfu: RunningSfu, room_sid: str) -> str:
    """How the SFU's last probe of carol's downlink was judged, numbered ("" before any)."""
    room = sfu.signaling.rooms.live_room(room_sid)
    router = sfu.signaling.routers.get(room_sid)
    if room is None or router is None:
        return ""
    carol = next((p.sid for p in room.participants.values() if p.identity == "carol"), None)
    for transport in router.transports.values():
        if transport.participant_id == carol:
            downlink = transport.bandwidth.downlink
            judged = downlink.probes.succeeded + downlink.probes.failed
            return f"#{judged} {downlink.last_probe}" if judged else ""
    return ""


@dataclass
class Trace:
    """Every second: what the SFU sends carol (the kiosk's camera in detail: layer,
    allocation, keyframe requests, losses), what the kiosk's camera encoded, and carol's own
    view of each remote camera."""

    lines: list[str] = field(default_factory=list)
    start: float = field(default_factory=time.monotonic)
    #: While set, each second's (the layer the SFU sends carol of the kiosk's camera, the
    #: layers the camera encodes), both read at the same instant.
    sampling: bool = False
    last_probe: str = ""
    encoding: list[tuple[str | None, frozenset[str]]] = field(default_factory=list)

    def mark(self, what: str) -> None:
        self.lines.append(f"{time.monotonic() - self.start:6.1f} --- {what}")

    def tail(self, since: str | None = None) -> str:
        lines = self.lines
        if since is not None:
            marks = [i for i, line in enumerate(lines) if line.endswith(f"--- {since}")]
            lines = lines[marks[-1] :] if marks else lines
        return "\n".join(lines)


def _kbit(bits: int | None) -> str:
    return "-" if bits is None else f"{bits // 1000}k"


class _Deltas:
    """Differences of counters from one sample to the next (0 on the first)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def __call__(self, key: str, value: float) -> float:
        before = self._last.get(key, value)
        self._last[key] = value
        return value - before


async def follow(sfu: RunningSfu, kiosk: Kiosk, pages: dict[str, Any], trace: Trace) -> None:
    """Fill ``trace`` every second until cancelled (carol's view once she is in ``pages``)."""
    delta = _Deltas()
    while True:
        await asyncio.sleep(1.0)
        parts: list[str] = []
        sent = carol_consumers(sfu, kiosk.call.room_sid)
        c = sent.pop(f"{KIOSK}/video", None)
        if trace.sampling:
            layer = None if c is None else c.layer
            trace.encoding.append((layer, frozenset(encoded_layers(kiosk.camera))))
        if c is None:
            parts.append("kiosk/video: no consumer")
        else:
            parts.append(
                f"kiosk/video {c.layer} want={c.preferred_layer} allowed={c.allowed_layer} "
                f"off={int(c.switched_off)} {c.reason} est={_kbit(c.available_outgoing_bps)} "
                f"pace={_kbit(c.pacing_bps)} "
                f"sent={_kbit(int(delta('kv.bytes', c.bytes_sent)) * 8)} "
                f"pli+{delta('kv.pli', c.plis_received):.0f} "
                f"nack+{delta('kv.nack', c.nacks_received):.0f} "
                f"rtx+{delta('kv.rtx', c.retransmitted):.0f} "
                f"sw={c.layer_switches} lost={c.fraction_lost or 0:.2f}"
            )
        for label, s in sorted(sent.items()):
            layer = f" {s.layer}/{s.allowed_layer}" if label.endswith("video") else ""
            parts.append(
                f"{label}{layer} {_kbit(int(delta(label, s.bytes_sent)) * 8)} "
                f"nack+{delta(label + '.nack', s.nacks_received):.0f} "
                f"rtx+{delta(label + '.rtx', s.retransmitted):.0f}"
            )
        encoded = []
        for name, frames in kiosk.frames().items():
            keyframes = kiosk.keyframes()[name]
            encoded.append(
                f"{name}+{delta('f' + name, frames):.0f}/k+{delta('k' + name, keyframes):.0f}"
            )
        parts.append(f"enc[{','.join(encoded)}]")
        probe = carol_probe(sfu, kiosk.call.room_sid)
        if probe and probe != trace.last_probe:  # each verdict once, when it is new
            trace.last_probe = probe
            parts.append(f"probe {probe}")
        carol = pages.get("carol")
        views = {} if carol is None else (await carol.evaluate(INBOUND_VIDEO_JS) or {})
        for remote, v in sorted(views.items()):
            decoded = delta(remote + ".decoded", v["framesDecoded"])
            frozen = delta(remote + ".frozen", v["totalFreezesDuration"])
            lost = delta(remote + ".lost", v["packetsLost"])
            parts.append(
                f"| carol<-{remote} +{decoded:.0f}f {v['frameWidth']}w frozen+{frozen:.1f}s "
                f"lost+{lost:.0f}"
            )
        trace.lines.append(f"{time.monotonic() - trace.start:6.1f} " + "; ".join(parts))


async def until(check: Callable[[], bool], limit: float) -> float | None:
    """Seconds until ``check()`` holds, polled every 0.2 s; None if not within ``limit``."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():
            return round(time.monotonic() - start, 2)
        await asyncio.sleep(0.2)
    return None


@dataclass
class Measured:
    """What the room showed, for the assertions and their messages."""

    alone: dict[str, dict[str, Seen]]
    seen: dict[str, dict[str, Seen]]
    #: The frame rate the kiosk's camera encoded its top layer at in each window.
    camera_alone_fps: float
    camera_fps: float
    #: Each second of the window: carol's layer of the kiosk's camera, what the camera encoded.
    encoding: list[tuple[str | None, frozenset[str]]]
    up_s: float | None = None
    alice_up_s: float | None = None
    encoding_after_up: set[str] = field(default_factory=set)
    only_top_s: float | None = None

    def bars(self) -> dict[str, bool]:
        """The adaptation issue's bars for this room, each with whether it held."""
        carol, alice = self.seen.get("carol", {}), self.seen.get("alice", {})
        alone = self.alone.get("alice", {}).get(KIOSK)
        tops = {"alice": CAMERA_SIZE[0], KIOSK: TOP.width}
        kiosk = alice.get(KIOSK)
        carol_layer = layer_of_width(carol[KIOSK].width) if KIOSK in carol else None
        return {
            "carol decodes each camera at 12 fps or more": all(
                r in carol and carol[r].fps >= 12 for r in tops
            ),
            "carol's cameras frozen 2 s or less each": all(
                r in carol and carol[r].frozen_s <= 2 for r in tops
            ),
            "carol gets a smaller size of each": all(
                r in carol and 0 < carol[r].width < top for r, top in tops.items()
            ),
            "alice decodes carol at 12 fps or more": "carol" in alice and alice["carol"].fps >= 12,
            "alice decodes the kiosk's top layer at 12 fps and 90 % of her share alone": (
                kiosk is not None
                and alone is not None
                and (kiosk.width, kiosk.height) == (TOP.width, TOP.height)
                and kiosk.fps >= 12
                and self.camera_fps > 0
                and self.camera_alone_fps > 0
                and kiosk.fps / self.camera_fps >= 0.9 * alone.fps / self.camera_alone_fps
            ),
            # read each second with carol's layer at that instant: a switch (the new layer
            # started, the old one still running until nobody takes it) is a moment, and
            # one sample at the window's end could fall in it
            "the kiosk encodes its top layer and carol's, no other, 90 % of the window": (
                carol_layer is not None
                and len(self.encoding) >= WINDOW_S / 2
                and self.encoding_held() >= 0.9
            ),
            f"carol is on the kiosk's top layer within {STEP_UP_S:.0f} s of the cap's lift": (
                self.up_s is not None and self.up_s <= STEP_UP_S
            ),
            "the kiosk then encodes its top layer alone": self.only_top_s is not None
            and self.encoding_after_up == {TOP.name},
        }

    def encoding_held(self) -> float:
        """The fraction of the window's samples where the camera encoded its top layer and
        the one carol took (only the top while carol had none), nothing else."""
        held = [enc == {TOP.name} | ({layer} if layer else set()) for layer, enc in self.encoding]
        return sum(held) / len(held) if held else 0.0

    def __str__(self) -> str:
        return (
            f"alice and the kiosk alone:\n{report(self.alone)}\n"
            f"  the kiosk's camera encoded its top layer at {self.camera_alone_fps:.1f} fps\n"
            f"with carol:\n{report(self.seen)}\n"
            f"  the kiosk's camera encoded its top layer at {self.camera_fps:.1f} fps\n"
            f"kiosk encoding with carol: its top layer and carol's in "
            f"{self.encoding_held():.0%} of {len(self.encoding)} samples\n"
            f"cap lifted: carol on the kiosk's top layer after {self.up_s} s "
            f"(alice's after {self.alice_up_s} s); kiosk encoding only {TOP.name} after "
            f"{self.only_top_s} s; then {sorted(self.encoding_after_up)}"
        )


async def watch_camera(
    kiosk: Kiosk, pages: dict[str, Any]
) -> tuple[dict[str, dict[str, Seen]], float]:
    """``watch`` over ``WINDOW_S``, and the rate the camera encoded its top layer at then."""
    frames, start = kiosk.frames()[TOP.name], time.monotonic()
    seen = await watch(pages, WINDOW_S)
    return seen, (kiosk.frames()[TOP.name] - frames) / (time.monotonic() - start)


async def capped_room(tmp_path: Path, host: SlowHost, scripts: Path, trace: Trace) -> Measured:
    """Run the room: alice and the kiosk alone, carol joining behind the cap, the cap lifted."""
    flag = real_camera_flag(scripts)
    media = MediaSettings(host_addresses=(host.gateway,))
    (tmp_path / "sfu").mkdir()
    host.set_rate(CAP_KBIT)
    async with (
        running_sfu(tmp_path / "sfu", host=host.gateway, media=media) as sfu,
        kiosk_in_room(sfu, tmp_path) as kiosk,
    ):
        secure = f"--unsafely-treat-insecure-origin-as-secure={sfu.base}"
        inside = host.executable(CHROMIUM, scripts)
        async with (
            chromium(secure, flag, FRAME_RATE_FLOOR_FLAG) as one,
            chromium(secure, flag, FRAME_RATE_FLOOR_FLAG, executable=inside) as slow,
        ):
            alice = await joined_page(one, sfu.base, sfu.token("alice"))
            await asyncio.sleep(SETTLE_S)
            alone, camera_alone_fps = await watch_camera(kiosk, {"alice": alice})
            trace.mark("carol joins")
            pages: dict[str, Any] = {}
            follower = asyncio.create_task(follow(sfu, kiosk, pages, trace))
            try:
                carol = pages["carol"] = await joined_page(slow, sfu.base, sfu.token("carol"))
                await asyncio.sleep(SETTLE_S)
                trace.mark("window")
                trace.sampling = True
                seen, camera_fps = await watch_camera(kiosk, {"alice": alice, "carol": carol})
                trace.sampling = False
                measured = Measured(alone, seen, camera_alone_fps, camera_fps, trace.encoding)
                trace.mark("cap lifted")
                host.set_rate(None)
                lifted = time.monotonic()
                top = TOP.width
                measured.up_s = await until_view(
                    carol, KIOSK, lambda v: v["frameWidth"] >= top, STEP_UP_S + 10
                )
                left = STEP_UP_S + 10 - (time.monotonic() - lifted)
                measured.only_top_s = await until(
                    lambda: encoded_layers(kiosk.camera) == {TOP.name}, max(5.0, left)
                )
                measured.encoding_after_up = encoded_layers(kiosk.camera)
                measured.alice_up_s = await until_view(
                    carol, "alice", lambda v: v["frameWidth"] >= CAMERA_SIZE[0], 5
                )
            finally:
                follower.cancel()
    assert not [p for p in kiosk.problems if p[0] == "camera"], kiosk.problems
    return measured


async def test_the_kiosk_encodes_the_layers_a_fast_and_a_capped_page_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_chromium()
    for name, value in alsa_env(tmp_path).items():
        monkeypatch.setenv(name, value)  # the kiosk's microphone and speaker are files
    trace = Trace()
    with slow_host() as host, scratch_dir() as scripts:
        try:
            m = await capped_room(tmp_path, host, scripts, trace)
        finally:
            host.set_rate(None)
            print(trace.tail())
    print(m)
    bars = m.bars()
    failed = [bar for bar, held in bars.items() if not held]
    window = trace.tail("window").split("--- cap lifted")[0]
    after = trace.tail("cap lifted")
    assert not failed, f"bars not met: {failed}\n{m}\nwindow:\n{window}\nafter the cap:\n{after}"
