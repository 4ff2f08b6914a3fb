"""The Python client subscribing from behind a real link cap (a network namespace capped
with tbf), in presentation mode: the high-priority screen plays on while the standard camera
is switched off (``track_switched_off``), and the camera comes back when the cap lifts.

(The Python client publishing from behind a cap: ``test_capped_publisher.py``.)

The tracks come from in-process sources that do not adapt, so what they send is known: their
rates are measured first and the cap is set between one and both of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_sfu.media import H264, MediaSettings
from edge_sfu.signaling.member import RoomMember
from tests.support.media import H264TestSource
from tests.support.netns import slow_host
from tests.support.sfu import running_sfu, settled_costs

pytestmark = pytest.mark.timeout(200)

#: The cap, as a multiple of the screen's rate (the costs count RTP, SRTP, UDP and IP
#: already). At a cap's onset the estimate dips to 0.6-0.7 of the link (cuts to 0.85 of what
#: got through while the queue drains, and loss's): the screen alone fits in half the cap, and
#: the dearer camera beside it does not fit in 1.2 times it.
CAP_SHARE = 2.0
SWITCH_S = 30.0
#: Seconds under the cap after the switch-off.
HOLD_S = 8
RUN_S = 150

# Runs inside the namespace: subscribes in presentation mode and prints, as JSON lines, its
# participant sid, each switch event, and every second the frames decoded per track and
# their width.
SUBSCRIBER = """
import asyncio, json, sys, time
from edge_sfu.client import connect

def out(**fields):
    print(json.dumps(fields), flush=True)

async def read(name, track, frames, widths):
    while True:
        frame = await track.recv()
        frames[name] = frames.get(name, 0) + 1
        widths[name] = frame.width

async def main():
    room = await connect(sys.argv[1], sys.argv[2], reconnect=False,
                         bandwidth_profile={"video": {"mode": "presentation"}})
    out(sid=room.local_sid)
    frames, widths, readers = {}, {}, []
    def subscribed(track, pub, who):
        if track.kind == "video":
            readers.append(asyncio.ensure_future(read(pub.name, track, frames, widths)))
    room.on("track_subscribed", subscribed)
    room.on("track_switched_off",
            lambda track, pub, who: out(off=pub.name, reason=pub.switch_off_reason))
    room.on("track_switched_on", lambda track, pub, who: out(on=pub.name))
    end = time.monotonic() + float(sys.argv[3])
    while time.monotonic() < end:
        await asyncio.sleep(1.0)
        report = await room.media.pc.getStats()
        got = {s.ssrc: (s.packetsReceived, s.packetsLost) for s in report.values()
               if s.type == "inbound-rtp" and s.kind == "video"}
        out(frames=dict(frames), widths=dict(widths), inbound=sorted(got.items()))
        frames.clear()
    await room.close()

asyncio.run(main())
"""


class Lines:
    """The JSON lines a subprocess prints, collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.got: list[dict[str, Any]] = []
        assert process.stdout is not None
        self._stdout = process.stdout
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self._stdout.readline():
            self.got.append(json.loads(line))

    async def until(self, wanted: dict[str, Any], seconds: float) -> int:
        """The index of the first line (after those already seen) holding ``wanted``."""
        start = len(self.got)
        deadline = time.monotonic() + seconds
        while True:
            for i, line in enumerate(self.got[start:], start):
                if wanted.items() <= line.items():
                    return i
            assert time.monotonic() < deadline, f"no {wanted} within {seconds} s: {self.got}"
            await asyncio.sleep(0.25)

    def tail(self, count: int) -> str:
        return "\n".join(map(str, self.got[-count:]))

    def seconds(self, since: int) -> list[dict[str, int]]:
        """Frames per track in each second reported after line ``since``."""
        return [line["frames"] for line in self.got[since:] if "frames" in line]

    def both_play(self, since: int) -> bool:
        """Whether both tracks decoded more than 5 frames in the last second (after
        ``since``)."""
        last = self.seconds(since)[-1:]
        return bool(last) and all(last[0].get(name, 0) > 5 for name in ("camera", "screen"))

    def switched_off(self) -> set[str]:
        """The tracks whose last switch event was ``off``."""
        off: set[str] = set()
        for line in self.got:
            if "off" in line:
                off.add(line["off"])
            elif "on" in line:
                off.discard(line["on"])
        return off


async def test_a_capped_python_subscriber_is_switched_off_and_recovers(tmp_path) -> None:
    """Under the cap the camera is switched off (``track_switched_off``, network congestion);
    once the cap lifts every track switched off is switched on and plays again."""
    await _capped_scenario(tmp_path, high_track_plays=False)


async def test_a_capped_python_subscriber_keeps_the_high_track_playing(tmp_path) -> None:
    """Under the cap the high-priority screen plays on its top layer, never switched off, and
    the camera stays off.

    Its picture used to stop for 4 to 6 s in about one run in five: the overshoot's loss cut
    the estimate under the screen, and it was switched off too. The loss-based floor keeps
    the most that got through lately, probes stop at the first overuse and step by at most
    1.5 times the estimate (a probe at twice it, after one that got through, cost the screen
    most of a second's frames), and the cap leaves the screen room for the estimate's dip at
    the cap's onset."""
    shortfall = await _capped_scenario(tmp_path, high_track_plays=True)
    assert not shortfall, shortfall


async def _capped_scenario(tmp_path: Path, *, high_track_plays: bool) -> str:
    """Returns why the high-priority track did not hold under the cap ("" when it did, or
    when not asked)."""
    shortfall = ""
    with slow_host() as host:
        media = MediaSettings(host_addresses=(host.gateway,))
        async with running_sfu(tmp_path, host=host.gateway, media=media) as sfu:
            kiosk = await sfu.signaling.connect_local("room1", "kiosk")
            camera = await kiosk.publish("camera", H264)
            screen = await kiosk.publish("screen", H264, priority="high")
            sources = [H264TestSource(camera, 640, 480), H264TestSource(screen, 320, 240)]
            process = await host.python(SUBSCRIBER, sfu.ws_url, sfu.token("bob"), str(RUN_S))
            lines = Lines(process)
            timeline: list[str] = []
            sampler: asyncio.Task[None] | None = None
            try:
                await _wait(lambda: bool(lines.got), 30, "the subscriber's sid", lines)
                sid = lines.got[0]["sid"]
                await _wait(lambda: lines.both_play(0), 30, "both tracks playing", lines)
                member = sfu.signaling.sessions[sid].participation
                assert isinstance(member, RoomMember)
                transport = member.bridge.transport
                by_producer = {c.producer.id: c for c in transport.consumers.values()}
                consumers = {"camera": by_producer[camera.id], "screen": by_producer[screen.id]}
                top = consumers["screen"].current_layer
                assert top is not None
                sampler = asyncio.create_task(_sample(transport, consumers, timeline))

                costs = await settled_costs(consumers)
                cap_kbit = int(costs["screen"] * CAP_SHARE) // 1000
                assert 1.2 * cap_kbit * 1000 < sum(costs.values()), costs
                host.set_rate(cap_kbit)

                def why() -> str:
                    return f"costs {costs}, cap {cap_kbit} kbit/s\n" + "\n".join(timeline)

                off = await lines.until({"off": "camera"}, SWITCH_S)
                assert lines.got[off]["reason"] == "network-congestion", lines.got[off]
                # while the estimate binds, what the subscriber gets is paced (a little
                # above the estimate) rather than sent in the publishers' bursts
                paced_before = transport.packets_paced
                await _wait(
                    lambda: (
                        transport.pacing_bps is not None
                        and transport.packets_paced > paced_before + 50
                    ),
                    10,
                    f"paced sending under the cap ({why()})",
                    lines,
                )

                camera_sent = consumers["camera"].packets_sent
                await asyncio.sleep(HOLD_S)
                capped = lines.seconds(off)[1:]
                assert len(capped) >= HOLD_S - 2, lines.got[off:]
                if high_track_plays:
                    # and it holds: the camera stays off (no switching back and forth: the
                    # SFU forwards none of it; a frame the subscriber's jitter buffer still
                    # held may be decoded late) while the screen plays every second
                    held = (
                        consumers["camera"].packets_sent == camera_sent
                        and not any(line.get("on") == "camera" for line in lines.got[off:])
                        and all(s.get("screen", 0) >= 5 for s in capped)
                        and not any(line.get("off") == "screen" for line in lines.got)
                        and consumers["screen"].current_layer == top
                    )
                    if not held:
                        shortfall = f"the high-priority track did not hold: {capped} {why()}"

                host.set_rate(None)
                lifted = len(lines.got)
                await _wait(lambda: lines.both_play(lifted), SWITCH_S, "both playing again", lines)
                assert lines.switched_off() == set(), f"{lines.got[lifted:]} {why()}"
                # the estimate no longer binds once nothing is held back: no more pacing
                await _wait(lambda: transport.pacing_bps is None, 20, "pacing to end", lines)
                return shortfall
            finally:
                if sampler is not None:
                    sampler.cancel()
                if process.returncode is None:
                    process.terminate()
                await process.wait()
                lines.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lines.task
                for source in sources:
                    await source.close()
                await kiosk.disconnect()


async def _sample(transport: Any, consumers: dict[str, Any], out: list[str]) -> None:
    """Every second, what the SFU forwards to the subscriber and its estimate (for a
    failure's message)."""
    start = time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        parts = [f"{time.monotonic() - start:.0f}s est={transport.allocation.last_available_bps}"]
        allocation = transport.allocation
        parts.append(f"congested={allocation.congested} probe={allocation.probe_target()}")
        parts.append(f"paced={transport.pacing_bps}/{transport.packets_paced}")
        for name, c in consumers.items():
            parts.append(f"{name}:{c.current_layer}/{c.switched_off}/{c.packets_sent}")
        out.append(" ".join(parts))


async def _wait(ready: Callable[[], bool], seconds: float, what: str, lines: Lines) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, f"no {what} within {seconds} s: {lines.got[-5:]}"
        await asyncio.sleep(0.25)
