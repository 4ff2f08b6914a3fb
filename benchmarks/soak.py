"""Soak: a four-party room with churn and data messages against the real daemon, for minutes.

Four Python (aiortc) participants publish a looped 160x120 H.264 clip at 10 fps and send a
data message every second; every 10 s a fifth joins, publishes, and leaves 5 s later. The
daemon runs as a subprocess on loopback (simulated hardware, the kiosk role idle). Every
30 s the script samples the daemon's RSS, open descriptors and threads (from /proc), its
event-loop lag, and what the participants received.

Event-loop lag is read from inside the daemon: it runs with ``WATCHDOG_USEC`` = 1 s, so its
loop sends ``WATCHDOG=1`` every 0.5 s; how late each ping arrives after the previous one is
the loop's lag. A round trip to the control socket (``status``) is reported too.

Target: RSS growth under 5 % from minute 2 to the end (for runs of 4 minutes or less, from
the middle of the run), descriptors and threads flat. Not part of CI.

    .venv/bin/python benchmarks/soak.py               # about 10 minutes
    .venv/bin/python benchmarks/soak.py --minutes 60

Last line of output: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.control.client import status  # noqa: E402
from tests.integration.daemon.participants import Participant, encoded_clip  # noqa: E402
from tests.support.daemon import Daemon, running_daemon  # noqa: E402

ROOM = "soak"
STEADY = ["p1", "p2", "p3", "p4"]
CHURN_EVERY = 10.0
CHURN_STAYS = 5.0
SAMPLE_EVERY = 30.0
WATCHDOG_USEC = 1_000_000


def proc_figures(pid: int) -> dict[str, float]:
    """RSS (MB), open descriptors and threads of ``pid``."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    return {
        "rss_mb": round(int(fields["VmRSS"][0]) / 1024, 1),
        "fds": len(list(Path(f"/proc/{pid}/fd").iterdir())),
        "threads": int(fields["Threads"][0]),
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def watchdog_lags(daemon: Daemon, since: float) -> list[float]:
    """Milliseconds each watchdog ping came later than half the watchdog interval."""
    times = [t for t, line in daemon.notify.line_events() if line == "WATCHDOG=1" and t >= since]
    expected = WATCHDOG_USEC / 2 / 1e6
    return [max(0.0, (b - a - expected) * 1000) for a, b in itertools.pairwise(times)]


async def churn(url: str, data_dir: Path, clip: Any, stop: asyncio.Event, counts: dict) -> None:
    """A fifth participant joins, publishes and leaves, every ``CHURN_EVERY`` seconds."""
    i = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            guest = await Participant.join(url, data_dir, f"guest{i % 3}", ROOM, clip)
            await asyncio.sleep(CHURN_STAYS)
            await guest.close()
            counts["churn_cycles"] += 1
        except Exception as exc:  # a failed cycle is a finding, not the end of the run
            counts["churn_errors"] += 1
            print(f"churn cycle {i} failed: {exc!r}", file=sys.stderr)
        i += 1
        await asyncio.sleep(max(0.0, started + CHURN_EVERY - time.monotonic()))


async def chatter(people: list[Participant], stop: asyncio.Event, counts: dict) -> None:
    """Each steady participant sends one data message a second."""
    tracks = [await p.room.publish_data("chat") for p in people]
    n = 0
    while not stop.is_set():
        for track in tracks:
            track.send(f"message {n}")
            counts["data_sent"] += 1
        n += 1
        await asyncio.sleep(1.0)


async def sample(daemon: Daemon, people: list[Participant], since: float) -> dict[str, Any]:
    sock = daemon.data_dir / "control.sock"
    before = time.perf_counter()
    summary = await asyncio.to_thread(status, sock)
    rtt = (time.perf_counter() - before) * 1000
    lags = watchdog_lags(daemon, since)
    rooms = summary.get("rooms", [])
    return {
        **proc_figures(daemon.proc.pid),
        "loop_lag_p50_ms": round(percentile(lags, 0.5), 1),
        "loop_lag_p99_ms": round(percentile(lags, 0.99), 1),
        "loop_lag_max_ms": round(max(lags, default=float("nan")), 1),
        "control_rtt_ms": round(rtt, 1),
        "participants": len(rooms[0]["participants"]) if rooms else 0,
        "packets_received": sum([await p.packets_received() for p in people]),
        "frames_received": sum(sum(p.frames_from.values()) for p in people),
        "data_received": sum(sum(p.messages_from.values()) for p in people),
    }


async def soak(minutes: float, tmp: Path) -> dict[str, Any]:
    env = {"WATCHDOG_USEC": str(WATCHDOG_USEC)}
    config: dict[str, dict[str, object]] = {"audio": {"enabled": False}}
    clip = encoded_clip()
    with running_daemon(tmp, config, env=env, name="soak") as daemon:
        url = await asyncio.to_thread(daemon.wait_ready)
        ws_url = url.replace("http://", "ws://") + "/v1/signaling"
        people = [await Participant.join(ws_url, daemon.data_dir, n, ROOM, clip) for n in STEADY]
        for p in people:
            await p.wait_for_media([n for n in STEADY if n != p.identity], 10, timeout=60)
        stop = asyncio.Event()
        counts = {"churn_cycles": 0, "churn_errors": 0, "data_sent": 0}
        tasks = [
            asyncio.create_task(churn(ws_url, daemon.data_dir, clip, stop, counts)),
            asyncio.create_task(chatter(people, stop, counts)),
        ]
        started = time.monotonic()
        samples: list[dict[str, Any]] = []
        previous = await sample(daemon, people, started)
        try:
            while time.monotonic() - started < minutes * 60:
                await asyncio.sleep(SAMPLE_EVERY)
                now = await sample(daemon, people, time.monotonic() - SAMPLE_EVERY)
                per_minute = 60 / SAMPLE_EVERY
                row = {
                    "t_min": round((time.monotonic() - started) / 60, 2),
                    **{k: now[k] for k in ("rss_mb", "fds", "threads", "participants")},
                    **{k: now[k] for k in now if k.startswith(("loop_lag", "control_rtt"))},
                    "packets_per_min": round(
                        (now["packets_received"] - previous["packets_received"]) * per_minute
                    ),
                    "frames_per_min": round(
                        (now["frames_received"] - previous["frames_received"]) * per_minute
                    ),
                    "data_msgs_per_min": round(
                        (now["data_received"] - previous["data_received"]) * per_minute
                    ),
                }
                previous = now
                samples.append(row)
                print(json.dumps(row), flush=True)
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(p.close() for p in people))
        all_lags = watchdog_lags(daemon, started)
        # Tracebacks and errors, except the one that says audio is off (this run turns it off).
        errors = [
            i
            for i, line in enumerate(daemon.output)
            if ("Traceback" in line or " ERROR " in line) and "audio: turned off" not in line
        ]
        for i in errors[:3]:
            print("".join(daemon.output[max(0, i - 1) : i + 25]), file=sys.stderr)
        assert daemon.stop() == 0
    # Baseline at minute 2, or at the middle of a short run (2 min runs: minute 1).
    base_at = 2.0 if minutes > 4 else minutes / 2
    base = min(samples, key=lambda r: abs(r["t_min"] - base_at))
    end = samples[-1]
    growth = (end["rss_mb"] - base["rss_mb"]) / base["rss_mb"] * 100
    return {
        "benchmark": "soak",
        "minutes": minutes,
        "baseline_at_min": base["t_min"],
        "rss_mb_baseline": base["rss_mb"],
        "rss_mb_end": end["rss_mb"],
        "rss_growth_pct": round(growth, 2),
        "fds_baseline": base["fds"],
        "fds_end": end["fds"],
        "threads_baseline": base["threads"],
        "threads_end": end["threads"],
        "loop_lag_p50_ms": round(percentile(all_lags, 0.5), 1),
        "loop_lag_p99_ms": round(percentile(all_lags, 0.99), 1),
        "loop_lag_max_ms": round(max(all_lags, default=float("nan")), 1),
        "packets_per_min_mean": round(sum(r["packets_per_min"] for r in samples) / len(samples)),
        "data_msgs_per_min_mean": round(
            sum(r["data_msgs_per_min"] for r in samples) / len(samples)
        ),
        **counts,
        "daemon_errors_logged": len(errors),
        "pass": growth < 5 and end["fds"] <= base["fds"] + 5 and end["threads"] <= base["threads"],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "load_average_1m": round(os.getloadavg()[0], 2),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        result = asyncio.run(soak(args.minutes, Path(tmp)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
