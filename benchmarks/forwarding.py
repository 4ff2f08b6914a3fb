"""Forwarding benchmark: this SFU against Janus and aiortc's MediaRelay, in one run.

One publisher (720p30 H.264 at about 2.5 Mbit/s, pre-encoded by libx264, plus Opus) and K
subscribers (K = 1, 4, 8, 16) on this host. For each SFU, in its own process: CPU time per
forwarded RTP packet (SFU process only, from /proc, over a 10 s window after warm-up),
per-frame forwarding latency (publisher send to subscriber receive of the frame's last
packet, p50/p99, read from an SEI time stamp in each frame) and RSS at the end of the
window. The reference peers are Janus's VideoRoom (Debian's ``janus``) and aiortc's
decode/re-encode ``MediaRelay`` (K=4 only: it saturates a core well before that). This
SFU runs twice: ``edge`` sends in batches (``sendmmsg``, UDP GSO) with each copy written and
protected by the compiled helper, ``edge-pure`` the same without it
(``EDGE_SFU_PURE_PYTHON=1``, the fallback where nothing could be compiled). ``edge-plain``
(``FWD_SFUS``) sends one ``sendto`` per packet (``EDGE_SFU_PLAIN_SEND=1``, the fallback
where batching cannot work).

Both SFUs run at a higher priority than the load generator (niceness ``FWD_SFU_NICE``
below this process's, -5 unless set; every thread of Janus alike), as a unit's SFU runs
with its clients on other machines: here they share the host's cores, and a subscriber
process woken by a datagram would otherwise preempt the SFU in the middle of its fan-out,
which is the host's cost, not the SFU's. Where lowering niceness is not permitted (not
root, no ``CAP_SYS_NICE``) they run at this process's; ``sfu_nice`` in each row and in
the result says which. Latency is read from each subscriber socket's kernel receive
stamp, so the measuring process's own delays do not count either.

Environment, for shorter runs: ``FWD_KS`` (e.g. ``8,16``), ``FWD_ROUNDS``, ``FWD_SFUS``
(e.g. ``edge,janus``; ``edge-uvloop`` is this SFU on uvloop, which is not a dependency:
install it somewhere on ``PYTHONPATH``), ``FWD_RELAY_KS`` (empty: no MediaRelay),
``FWD_SFU_NICE`` (0: the SFUs at the load generator's priority).

Runs with no arguments; the last line of output is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._forwarding.media import Publisher, Receiver, encode_h264, encode_opus  # noqa: E402
from edge_sfu.media.seam.egress import PLAIN_SEND_ENV, PURE_PYTHON_ENV  # noqa: E402
from tests.support.janus import Janus, JanusRoom  # noqa: E402

WARMUP_S = 3.0
MEASURE_S = 10.0
KS = tuple(int(x) for x in os.environ.get("FWD_KS", "1,4,8,16").split(","))
RELAY_KS = tuple(int(x) for x in os.environ.get("FWD_RELAY_KS", "4").split(",") if x)
ROUNDS = int(os.environ.get("FWD_ROUNDS", "3"))
#: The SFU's send paths: batched with the compiled helper (the default), batched in pure
#: Python (no compiler at install), one sendto per packet (no batching).
EDGE_SEND = {
    "edge": {PLAIN_SEND_ENV: "0", PURE_PYTHON_ENV: "0"},
    "edge-pure": {PLAIN_SEND_ENV: "0", PURE_PYTHON_ENV: "1"},
    "edge-plain": {PLAIN_SEND_ENV: "1"},
    # asyncio's loop replaced by uvloop (if installed: it is no dependency)
    "edge-uvloop": {PLAIN_SEND_ENV: "0", "FWD_LOOP": "uvloop"},
}
PATH = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
SFUS = tuple(os.environ.get("FWD_SFUS", "edge,edge-pure,janus").split(","))
ORDER = ("edge", "edge-pure", "edge-plain", "edge-uvloop", "janus", "relay")
#: The SFUs' niceness relative to this process's (see the module's docstring).
SFU_NICE = int(os.environ.get("FWD_SFU_NICE", "-5"))


def prioritize(pid: int) -> int:
    """Every thread of ``pid`` at ``SFU_NICE`` below this process's niceness; returns the
    difference applied (0 where it is not permitted)."""
    if SFU_NICE == 0:
        return 0
    target = os.getpriority(os.PRIO_PROCESS, 0) + SFU_NICE
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.setpriority(os.PRIO_PROCESS, int(tid), target)
    except PermissionError:
        return 0
    except (FileNotFoundError, ProcessLookupError):
        pass  # a thread that ended meanwhile
    return SFU_NICE


class ServerProcess:
    """``benchmarks._forwarding.server`` in a subprocess, driven over stdin/stdout."""

    def __init__(self, mode: str, env: dict[str, str] | None = None) -> None:
        self.mode = mode
        self.env = env or {}
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks._forwarding.server",
            self.mode,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=str(ROOT),
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *PATH]), **self.env},
            limit=1 << 20,
        )
        await self._read()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def _read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError(f"{self.mode} server exited")
        result: dict[str, Any] = json.loads(line)
        return result

    async def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read()

    async def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            try:
                self.proc.stdin.write(b'{"op": "quit"}\n')  # type: ignore[union-attr]
                await asyncio.wait_for(self.proc.wait(), 10)
            except (TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def system_seconds(pid: int) -> float:
    return float(psutil.Process(pid).cpu_times().system)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run_case(sfu: str, k: int, video: list[bytes], audio: list[bytes]) -> dict[str, Any]:
    publisher = Publisher(video, audio)
    receivers = [Receiver(publisher) for _ in range(k)]
    janus: Janus | None = None
    server: ServerProcess | None = None
    try:
        if sfu == "janus":
            janus = Janus()
            await janus.start()
            room = JanusRoom(janus)
            await room.create()
            await publisher.answer(await room.publish(await publisher.offer()))
            pid = janus.pid
        elif sfu in EDGE_SEND:  # the SFU offers, as in production
            server = ServerProcess("edge", EDGE_SEND[sfu])
            await server.start()
            offer = (await server.call(op="publish-offer"))["sdp"]
            await server.call(op="publish-answer", sdp=await publisher.answer_offer(offer))
            pid = server.pid
        else:
            server = ServerProcess("relay")
            await server.start()
            answer = await server.call(op="publish", sdp=await publisher.offer())
            await publisher.answer(answer["sdp"])
            pid = server.pid
        publisher.start()
        await asyncio.sleep(1.0)
        for i, receiver in enumerate(receivers):
            if janus is not None:
                handle, offer = await room.subscribe()
                await room.start(handle, await receiver.answer_offer(offer))
            else:
                assert server is not None
                offer = (await server.call(op="subscribe", id=f"S{i}"))["sdp"]
                await server.call(op="answer", id=f"S{i}", sdp=await receiver.answer_offer(offer))
        # every thread the SFU runs for this room exists now (Janus: one per handle)
        nice = prioritize(pid)
        await asyncio.sleep(WARMUP_S)
        for receiver in receivers:
            receiver.measuring = True
        cpu0 = cpu_seconds(pid)
        sys0 = system_seconds(pid)
        frames0 = publisher.frames_sent
        t0 = time.monotonic()
        await asyncio.sleep(MEASURE_S)
        cpu1 = cpu_seconds(pid)
        sys1 = system_seconds(pid)
        elapsed = time.monotonic() - t0
        for receiver in receivers:
            receiver.measuring = False
        frames = publisher.frames_sent - frames0
        rss = psutil.Process(pid).memory_info().rss / 1e6
        packets = sum(r.counters.packets for r in receivers)
        latencies = [x for r in receivers for x in r.counters.latencies]
        cpu = cpu1 - cpu0
        return {
            "sfu": sfu,
            "k": k,
            "seconds": round(elapsed, 2),
            "frames_sent": frames,
            "packets_forwarded": packets,
            "cpu_s": round(cpu, 3),
            "cpu_pct": round(100 * cpu / elapsed, 1),
            "cpu_us_per_packet": round(cpu / packets * 1e6, 2) if packets else None,
            # the kernel's part (system time): sending, receiving, waking
            "system_us_per_packet": round((sys1 - sys0) / packets * 1e6, 2) if packets else None,
            "latency_p50_ms": _round(percentile(latencies, 50)),
            "latency_p99_ms": _round(percentile(latencies, 99)),
            "frames_measured": len(latencies),
            "rss_mb": round(rss, 1),
            "sfu_nice": nice,
            "loadavg_1min": round(os.getloadavg()[0], 2),
        }
    finally:
        for receiver in receivers:
            await receiver.close()
        await publisher.close()
        if server is not None:
            await server.close()
        if janus is not None:
            await janus.close()


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over rounds of each figure (RSS: the largest)."""
    out = dict(runs[0])
    for key in (
        "packets_forwarded",
        "cpu_pct",
        "cpu_us_per_packet",
        "latency_p50_ms",
        "latency_p99_ms",
    ):
        out[key] = _median([r[key] for r in runs])
    out["rss_mb"] = max(r["rss_mb"] for r in runs)
    out["rounds"] = len(runs)
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| SFU | K | packets fwd | CPU % | CPU µs/packet | latency p50 ms | latency p99 ms "
        "| RSS MB |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['sfu']} | {r['k']} | {r['packets_forwarded']} | {r['cpu_pct']} | "
            f"{r['cpu_us_per_packet']} | {r['latency_p50_ms']} | {r['latency_p99_ms']} | "
            f"{r['rss_mb']} |"
        )
    return "\n".join(lines)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return round(a / b, 3)


async def main() -> dict[str, Any]:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    video = encode_h264()
    audio = encode_opus()
    mbps = sum(map(len, video)) * 8 * 30 / len(video) / 1e6
    print(f"pre-encoded {len(video)} frames, {mbps:.2f} Mbit/s", flush=True)
    raw: dict[tuple[str, int], list[dict[str, Any]]] = {}
    # Rounds interleave this SFU and Janus so that load from other processes on the host
    # falls on both alike; each figure is the median over rounds.
    plan = [(sfu, k) for _ in range(ROUNDS) for k in KS for sfu in SFUS]
    plan += [("relay", k) for k in RELAY_KS]
    for sfu, k in plan:
        row = await run_case(sfu, k, video, audio)
        raw.setdefault((sfu, k), []).append(row)
        print(json.dumps(row), flush=True)
    rows = [summarize(runs) for runs in raw.values()]
    rows.sort(key=lambda r: (ORDER.index(r["sfu"]), r["k"]))
    print(table(rows), flush=True)
    by = {(r["sfu"], r["k"]): r for r in rows}

    def figure(sfu: str, k: int, key: str) -> Any:
        row = by.get((sfu, k))
        return None if row is None else row[key]

    result: dict[str, Any] = {}
    for k in KS:
        result[f"ratio_cpu_vs_janus_k{k}"] = ratio(
            figure("edge", k, "cpu_us_per_packet"), figure("janus", k, "cpu_us_per_packet")
        )
        for sfu, prefix in (("edge-pure", "pure_"), ("edge-plain", "plain_")):
            result[f"{prefix}ratio_cpu_vs_janus_k{k}"] = ratio(
                figure(sfu, k, "cpu_us_per_packet"), figure("janus", k, "cpu_us_per_packet")
            )
    for k in RELAY_KS:
        result[f"ratio_cpu_vs_mediarelay_k{k}"] = ratio(
            figure("edge", k, "cpu_us_per_packet"), figure("relay", k, "cpu_us_per_packet")
        )
    for k in (k for k in KS if k >= 8):
        for sfu, prefix in (
            ("edge", ""),
            ("edge-pure", "pure_"),
            ("edge-plain", "plain_"),
            ("janus", "janus_"),
        ):
            result[f"{prefix}cpu_us_per_packet_k{k}"] = figure(sfu, k, "cpu_us_per_packet")
            result[f"{prefix}latency_p50_ms_k{k}"] = figure(sfu, k, "latency_p50_ms")
            result[f"{prefix}latency_p99_ms_k{k}"] = figure(sfu, k, "latency_p99_ms")
            result[f"{prefix}rss_mb_k{k}"] = figure(sfu, k, "rss_mb")
    result.update(
        {
            "seconds": round(time.monotonic() - started, 1),
            "loadavg_1min_before": round(load_before, 2),
            "loadavg_1min_after": round(os.getloadavg()[0], 2),
            "sfu_nice": max((r["sfu_nice"] for runs in raw.values() for r in runs), default=0),
            "cpus": os.cpu_count(),
        }
    )
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())), flush=True)
