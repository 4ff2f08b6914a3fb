"""Capacity benchmark: the largest room one SFU process serves within one core.

N participants, each publishing 3-layer simulcast H.264 (1280x720 at 2.5 Mbit/s, 640x360
at 0.8 Mbit/s, 320x180 at 0.25 Mbit/s, 30 fps, pre-encoded by libx264; rid-based, with
the mid and rid header extensions) plus Opus, and each subscribing to every other
participant's audio and video: at 320x180 (a grid) except one, the next participant's,
at 1280x720. A room fails with more than 1 % of the packets the subscribers should have
received missing, the SFU process needing more than one core (its user+system CPU time over
the window), or a forwarding latency p99 of 10 ms or more. N rises (``STEP``) while loss
and CPU hold, so one run gives both the largest N meeting all three (``largest_n``) and the
largest carried without loss within a core (``largest_n_without_latency``): on a shared
2-core host the latency tail measures the host and the load generator as much as the SFU.
A room that fails on loss or CPU is run once more before N stops rising (a peer connection
that came up late on the loaded host is not the SFU's limit). The same room through Janus's
VideoRoom (Debian's ``janus``, simulcast on) in the same run.

Reuses the forwarding benchmark's harness (``benchmarks/_forwarding``, and Janus's driver in
``tests/support/janus``): the SFU process, the Janus driver, the publisher and receivers
(which time each frame's last packet, from its kernel receive stamp, against an SEI time
stamp and never decode), and its priorities: both SFUs run above the load generator
(``FWD_SFU_NICE``, ``sfu_nice`` in each row; see ``benchmarks/forwarding.py``). Each
participant is one publishing and one receiving peer connection, in this process. Loopback
only; every loop is bounded (``MAX_N``, and a time budget per SFU). Runs with no arguments,
in under 10 minutes; the last line of output is one JSON object.

The Raspberry Pi 4 figure is an **estimate**: the largest N whose SFU CPU, scaled by the
ratio of one core's Python speed (a published Pi 4 time of the Benchmarks Game's n-body
program, ``PI4_SOURCE``, against the same program run here), stays within one core. It is
not a measurement.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._forwarding.media import (  # noqa: E402
    SIMULCAST,
    Receiver,
    SimulcastPublisher,
    encode_h264,
    encode_opus,
    with_send_simulcast,
)
from benchmarks.forwarding import ServerProcess, cpu_seconds, percentile, prioritize  # noqa: E402
from tests.support.janus import Janus, JanusRoom  # noqa: E402

START_N = int(os.environ.get("CAP_START", "4"))
STEP = int(os.environ.get("CAP_STEP", "4"))
MAX_N = int(os.environ.get("CAP_MAX", "40"))
# per SFU: N stops rising after it (a room and its retry may overrun it; under 10 min in all)
BUDGET_S = float(os.environ.get("CAP_BUDGET_S", "150"))
SFUS = tuple(os.environ.get("CAP_SFUS", "edge,janus").split(","))
READY_S = 30.0
WARMUP_S = 2.0
MEASURE_S = 6.0
FRAMES = 90
MAX_LOSS = 0.01
MAX_P99_MS = 10.0
MAX_CORES = 1.0
#: A Raspberry Pi 4 (4 GB, 1.5 GHz, performance governor) ran the Benchmarks Game's Python
#: n-body program for 5,000,000 steps in 158.26 s (PI4_SOURCE); ``nbody_seconds`` runs the
#: same program here, so the ratio of one core's Python speed is measured on this side.
PI4_NBODY_5M_S = 158.26
PI4_SOURCE = (
    "https://chaitanyamehta.github.io/projects/performance-analysis-of-programming-languages"
    " (Python n-body, 5M steps, Raspberry Pi 4 Model B: 158.26 s; the Python version is not"
    " stated: an older one than 3.11 makes the ratio an overestimate)"
)
NBODY_STEPS = 500_000


def _summary(
    sfu: str,
    n: int,
    publishers: list[SimulcastPublisher],
    receivers: list[Receiver],
    cpu: float,
    own_cpu: float,
    elapsed: float,
) -> dict[str, Any]:
    # each participant is the "big" one for exactly one subscriber, its grid tile for N-2
    expected = sum(
        (n - 2) * (p.sent["q"] + p.audio_sent) + p.sent["f"] + p.audio_sent for p in publishers
    )
    received = sum(r.counters.packets for r in receivers)
    latencies = [x for r in receivers for x in r.counters.latencies]
    loss = max(0.0, 1 - received / expected) if expected else 1.0
    p99 = percentile(latencies, 99)
    cores = cpu / elapsed
    carried = loss < MAX_LOSS and cores <= MAX_CORES
    ok = carried and p99 is not None and p99 < MAX_P99_MS
    return {
        "sfu": sfu,
        "n": n,
        "ok": ok,
        # loss and CPU alone: on a shared 2-core host the latency tail is mostly the host's
        "ok_without_latency": carried,
        "expected_packets": expected,
        "received_packets": received,
        "loss_pct": round(100 * loss, 2),
        "latency_p50_ms": _round(percentile(latencies, 50)),
        "latency_p99_ms": _round(p99),
        "frames_timed": len(latencies),
        "sfu_cores": round(cores, 3),
        "sfu_cpu_ms_per_participant_s": round(1000 * cores / n, 1),
        "load_generator_cores": round(own_cpu / elapsed, 3),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


class _SendTimes:
    """Every publisher's frame send times, for receivers of many publishers."""

    def __init__(self, publishers: list[SimulcastPublisher]) -> None:
        self.send_times: dict[int, int] = {}
        for publisher in publishers:
            publisher.send_times = self.send_times


async def run_room(
    sfu: str, n: int, layers: dict[str, list[bytes]], audio: list[bytes]
) -> dict[str, Any]:
    rids = [rid for rid, *_ in SIMULCAST]
    # Janus reads the rids of an offer as its substreams from the top down (as janus.js
    # lists them): listed top first
    janus_rids = list(reversed(rids))
    publishers = [SimulcastPublisher(layers, audio, tag=i + 1) for i in range(n)]
    times = _SendTimes(publishers)
    receivers = [Receiver(times, video_streams=n - 1) for _ in range(n)]
    janus: Janus | None = None
    server: ServerProcess | None = None
    try:
        if sfu == "edge":
            server = ServerProcess("edge")
            await server.start()
            pid = server.pid
            for i, pub in enumerate(publishers):
                offer = (await server.call(op="room-publish-offer", id=f"P{i}"))["sdp"]
                answer = with_send_simulcast(await pub.answer_offer(offer), rids)
                await server.call(op="room-publish-answer", id=f"P{i}", sdp=answer)
                pub.start()
            await asyncio.sleep(0.5)
            for i, receiver in enumerate(receivers):
                big = f"P{(i + 1) % n}"
                offer = (await server.call(op="room-subscribe", id=f"S{i}", own=f"P{i}", big=big))[
                    "sdp"
                ]
                await server.call(op="answer", id=f"S{i}", sdp=await receiver.answer_offer(offer))
        else:
            janus = Janus()
            await janus.start()
            pid = janus.pid
            room = JanusRoom(janus, publishers=n)
            await room.create()
            for pub in publishers:
                offer = with_send_simulcast(await pub.offer(), janus_rids)
                await pub.answer(await room.publish(offer))
                pub.start()
            await asyncio.sleep(0.5)
            for i, receiver in enumerate(receivers):
                big = room.feeds[(i + 1) % n]
                others = [f for j, f in enumerate(room.feeds) if j != i]
                handle, offer, video = await room.subscribe_feeds(others, big)
                await room.start(handle, await receiver.answer_offer(offer))
                await room.choose_substreams(handle, video, big)
        # warm-up: until every subscriber has every video stream (ICE, DTLS and a keyframe
        # per stream take a while for 2N peer connections on a loaded host), at most READY_S
        ready = time.monotonic()
        while time.monotonic() - ready < READY_S:
            if all(len(r.anchors) >= n - 1 for r in receivers):
                break
            await asyncio.sleep(0.5)
        ready_s = time.monotonic() - ready
        # as the forwarding benchmark: the SFU (every Janus thread) above the load generator
        nice = prioritize(pid)
        await asyncio.sleep(WARMUP_S)
        for receiver in receivers:
            receiver.measuring = True
        for pub in publishers:
            pub.counting = True
        cpu0, own0 = cpu_seconds(pid), time.process_time()
        t0 = time.monotonic()
        await asyncio.sleep(MEASURE_S)
        cpu1, own1 = cpu_seconds(pid), time.process_time()
        elapsed = time.monotonic() - t0
        # counted sent and received over the same window: what is in flight at its end
        # is about what was in flight at its start
        for pub in publishers:
            pub.counting = False
        for receiver in receivers:
            receiver.measuring = False
        row = _summary(sfu, n, publishers, receivers, cpu1 - cpu0, own1 - own0, elapsed)
        row["streams_up_s"] = round(ready_s, 1)
        row["sfu_nice"] = nice
        row["all_streams_up"] = all(len(r.anchors) >= n - 1 for r in receivers)
        if server is not None and os.environ.get("CAP_DEBUG"):
            row["consumers"] = (await server.call(op="room-stats"))["consumers"]
        return row
    finally:
        for receiver in receivers:
            await receiver.close()
        for pub in publishers:
            await pub.close()
        if server is not None:
            await server.close()
        if janus is not None:
            await janus.close()


async def _room_or_error(
    sfu: str, n: int, layers: dict[str, list[bytes]], audio: list[bytes]
) -> dict[str, Any]:
    """``run_room``, or a failed row saying why the room could not be set up."""
    try:
        return await run_room(sfu, n, layers, audio)
    except Exception as exc:  # an SFU refusing or timing out is a failed room, not a crash
        return {
            "sfu": sfu,
            "n": n,
            "ok": False,
            "ok_without_latency": False,
            "error": f"{type(exc).__name__}: {exc}"[:300],
            "loadavg_1min": round(os.getloadavg()[0], 2),
        }


def nbody_seconds(steps: int = NBODY_STEPS) -> float:
    """CPU seconds of the Benchmarks Game's Python n-body program (its #1 form) here."""
    pi = 3.14159265358979323
    solar = 4 * pi * pi
    year = 365.24
    bodies = [
        ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], solar),
        (
            [4.84143144246472090e00, -1.16032004402742839e00, -1.03622044471123109e-01],
            [
                1.66007664274403694e-03 * year,
                7.69901118419740425e-03 * year,
                -6.90460016972063023e-05 * year,
            ],
            9.54791938424326609e-04 * solar,
        ),
        (
            [8.34336671824457987e00, 4.12479856412430479e00, -4.03523417114321381e-01],
            [
                -2.76742510726862411e-03 * year,
                4.99852801234917238e-03 * year,
                2.30417297573763929e-05 * year,
            ],
            2.85885980666130812e-04 * solar,
        ),
        (
            [1.28943695621391310e01, -1.51111514016986312e01, -2.23307578892655734e-01],
            [
                2.96460137564761618e-03 * year,
                2.37847173959480950e-03 * year,
                -2.96589568540237556e-05 * year,
            ],
            4.36624404335156298e-05 * solar,
        ),
        (
            [1.53796971148509165e01, -2.59193146099879641e01, 1.79258772950371181e-01],
            [
                2.68067772490389322e-03 * year,
                1.62824170038242295e-03 * year,
                -9.51592254519715870e-05 * year,
            ],
            5.15138902046611451e-05 * solar,
        ),
    ]
    pairs = [(bodies[i], b) for i in range(len(bodies) - 1) for b in bodies[i + 1 :]]
    started = time.process_time()
    for _ in range(steps):
        for ([x1, y1, z1], v1, m1), ([x2, y2, z2], v2, m2) in pairs:
            dx, dy, dz = x1 - x2, y1 - y2, z1 - z2
            mag = 0.01 * ((dx * dx + dy * dy + dz * dz) ** (-1.5))
            b1m, b2m = m1 * mag, m2 * mag
            v1[0] -= dx * b2m
            v1[1] -= dy * b2m
            v1[2] -= dz * b2m
            v2[0] += dx * b1m
            v2[1] += dy * b1m
            v2[2] += dz * b1m
        for r, [vx, vy, vz], _m in bodies:
            r[0] += 0.01 * vx
            r[1] += 0.01 * vy
            r[2] += 0.01 * vz
    return time.process_time() - started


def _last_before_failure(rows: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    best = None
    for row in rows:
        if not row[key]:
            break
        best = row
    return best


def pi4_estimate(rows: list[dict[str, Any]], slower: float) -> int | None:
    """The largest N carried here without loss whose SFU CPU, times ``slower``, fits
    one core; below the smallest room measured, CPU per participant scaled to one core
    (CPU per participant grows with N, so that overestimates)."""
    carried = [r for r in rows if r["ok_without_latency"]]
    fitting = [r["n"] for r in carried if r["sfu_cores"] * slower <= MAX_CORES]
    if fitting:
        return max(fitting)
    if not carried:
        return None
    per = min(r["sfu_cores"] / r["n"] for r in carried) * slower
    return int(MAX_CORES / per) if per else None


async def main() -> dict[str, Any]:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    nbody = nbody_seconds()
    slower = PI4_NBODY_5M_S / (nbody * 5_000_000 / NBODY_STEPS)
    print(f"n-body: {nbody:.2f} s here; a Pi 4 core is {slower:.1f}x slower", flush=True)
    layers = {
        rid: encode_h264(FRAMES, width, height, bitrate)
        for rid, width, height, bitrate in SIMULCAST
    }
    audio = encode_opus()
    print(f"pre-encoded {FRAMES} frames per layer", flush=True)
    results: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for sfu in SFUS:
        begun = time.monotonic()
        n = START_N
        # N rises while loss and CPU hold (the latency criterion is read off the same rows)
        while n <= MAX_N:
            row = await _room_or_error(sfu, n, layers, audio)
            print(json.dumps(row), flush=True)
            if not row["ok_without_latency"]:
                # once more: on a shared host a peer connection may come up late
                row = await _room_or_error(sfu, n, layers, audio)
                row["second_try"] = True
                print(json.dumps(row), flush=True)
            rows.append(row)
            if not row["ok_without_latency"]:
                break
            if time.monotonic() - begun > BUDGET_S:
                row["budget_reached"] = True
                break
            n += STEP
        mine = [r for r in rows if r["sfu"] == sfu]
        best = _last_before_failure(mine, "ok")
        carried = _last_before_failure(mine, "ok_without_latency")
        results[sfu] = {
            "largest_n": best["n"] if best else None,
            "failed_at": next((r["n"] for r in mine if not r["ok"]), None),
            "largest_n_without_latency": carried["n"] if carried else None,
            "sfu_cpu_ms_per_participant_s": (
                carried["sfu_cpu_ms_per_participant_s"] if carried else None
            ),
            "pi4_estimate_n": pi4_estimate(mine, slower),
        }
    out: dict[str, Any] = {
        "largest_n_edge": results.get("edge", {}).get("largest_n"),
        "largest_n_janus": results.get("janus", {}).get("largest_n"),
        "failed_at_edge": results.get("edge", {}).get("failed_at"),
        "failed_at_janus": results.get("janus", {}).get("failed_at"),
        "largest_n_without_latency_edge": results.get("edge", {}).get("largest_n_without_latency"),
        "largest_n_without_latency_janus": results.get("janus", {}).get(
            "largest_n_without_latency"
        ),
        "cpu_ms_per_participant_s_edge": results.get("edge", {}).get(
            "sfu_cpu_ms_per_participant_s"
        ),
        "cpu_ms_per_participant_s_janus": results.get("janus", {}).get(
            "sfu_cpu_ms_per_participant_s"
        ),
        "pi4_estimate_n_edge": results.get("edge", {}).get("pi4_estimate_n"),
        "pi4_estimate_n_janus": results.get("janus", {}).get("pi4_estimate_n"),
        "pi4_slower": round(slower, 2),
        "nbody_500k_cpu_s_here": round(nbody, 3),
        "pi4_estimate_note": f"estimate, not measured: SFU CPU x {slower:.1f} ({PI4_SOURCE})",
        "rows": rows,
        "seconds": round(time.monotonic() - started, 1),
        "loadavg_1min_before": round(load_before, 2),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())), flush=True)
