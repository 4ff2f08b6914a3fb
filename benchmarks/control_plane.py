"""Control-plane benchmark: token verifications per second, REST latency under a bounded load,
and the event loop's lag under that load (the media path shares this loop: p99 < 10 ms).

Runs with no arguments in well under three minutes. The unit (REST API, room service,
status-callback outbox) runs in this process on a loopback port; the load comes from a child
process (so its own work does not stall the loop under test) at a fixed request rate, mixing
room creation with a status callback, fetches, lists, participant lists and completions,
while rooms inside the unit see participants join, publish and leave. The last line printed
is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_sfu.context import SfuContext
from edge_sfu.identity import load_or_create_identity
from edge_sfu.keys import KeyStore
from edge_sfu.server import create_sfu_app
from edge_sfu.tokens import mint_access_token, verify_access_token

RATE = 150  # REST requests per second offered by the load generator
DURATION = 20.0  # seconds of load
CONCURRENCY = 16
TOKEN_SECONDS = 3.0
LAG_INTERVAL = 0.005


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_tokens(keys: KeyStore, account_sid: str, key_sid: str) -> float:
    """Verifications per second of one token, strictly (signature, claims, key lookup)."""
    key = keys.get(key_sid)
    assert key is not None
    token = mint_access_token(key, account_sid, "alice", room="lobby", ttl=3600)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < TOKEN_SECONDS:
        for _ in range(100):
            verify_access_token(token, keys, account_sid, room="lobby")
        count += 100
    return count / (time.perf_counter() - start)


async def measure_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """Sample how late the loop wakes a sleeper every ``LAG_INTERVAL`` seconds."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(LAG_INTERVAL)
        lags.append(max(0.0, loop.time() - before - LAG_INTERVAL) * 1000)


async def room_churn(context: SfuContext, stop: asyncio.Event) -> None:
    """Participants join, publish, mute and leave inside the unit, as signaling would drive."""
    rooms, i = context.rooms, 0
    while not stop.is_set():
        p = await rooms.connect(f"user-{i % 7}", f"churn-{i % 5}")
        track = await rooms.publish_track(p.sid, "audio", "mic")
        await rooms.set_track_enabled(p.sid, track.sid, False)
        if i % 3 == 0:
            await rooms.disconnect(p.sid)
        i += 1
        await asyncio.sleep(0.02)


async def run_server() -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="control-bench-"))
    identity = load_or_create_identity(data_dir)
    keys = KeyStore(data_dir, builtin=identity.signing_key)
    key = keys.create("bench")
    tokens_per_s = bench_tokens(keys, identity.account_sid, key.sid)

    context = SfuContext.open(data_dir, identity, keys)
    runner = web.AppRunner(create_sfu_app(context), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stop, lags = asyncio.Event(), []
    lag_task = asyncio.create_task(measure_lag(stop, lags))
    churn_task = asyncio.create_task(room_churn(context, stop))
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client", f"http://127.0.0.1:{port}", key.sid,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "CONTROL_BENCH_SECRET": key.secret},  # never on a command line
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=DURATION + 60)
        client = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        stop.set()
        cpu = (time.process_time() - cpu_before) / (time.perf_counter() - wall_before)
        await asyncio.gather(lag_task, churn_task)
        pending = context.callbacks.pending()
        await runner.cleanup()
    return {
        "benchmark": "control_plane",
        "token_verifications_per_s": round(tokens_per_s),
        **client,
        "loop_lag_p50_ms": round(percentile(lags, 0.50), 3),
        "loop_lag_p99_ms": round(percentile(lags, 0.99), 3),
        "loop_lag_max_ms": round(max(lags), 3),
        # Share of one core the unit's process used under load: lag beyond what this
        # explains is the scheduler giving the core to other processes.
        "unit_cpu_share": round(cpu, 3),
        "callbacks_pending_at_end": pending,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


# -- the load generator (child process) ----------------------------------------------------


async def sink(request: web.Request) -> web.Response:
    """Status callback receiver of the load generator."""
    await request.read()
    return web.Response(status=204)


async def one_request(http: aiohttp.ClientSession, base: str, i: int, state: dict) -> None:
    kind = i % 10
    if kind == 0:
        data = {"UniqueName": f"bench-{i}", "StatusCallback": state["sink"]}
        async with http.post(f"{base}/v1/Rooms", data=data) as resp:
            body = await resp.json()
            state["rooms"].append(body["sid"])
    elif kind == 1 and len(state["rooms"]) > 3:
        sid = state["rooms"].pop(0)
        async with http.post(f"{base}/v1/Rooms/{sid}", data={"Status": "completed"}) as resp:
            await resp.read()
    elif kind in (2, 3, 4) and state["rooms"]:
        async with http.get(f"{base}/v1/Rooms/{state['rooms'][-1]}") as resp:
            await resp.read()
    elif kind in (5, 6):
        async with http.get(f"{base}/v1/Rooms/churn-{i % 5}/Participants") as resp:
            await resp.read()
    else:
        async with http.get(f"{base}/v1/Rooms", params={"PageSize": "20"}) as resp:
            await resp.read()
    if resp.status >= 500:
        raise RuntimeError(f"HTTP {resp.status}")


async def run_client(base: str, sid: str, secret: str) -> dict[str, object]:
    app = web.Application()
    app.router.add_post("/status", sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state: dict = {"rooms": [], "sink": f"http://127.0.0.1:{runner.addresses[0][1]}/status"}
    latencies: list[float] = []
    errors = 0
    slots = asyncio.Semaphore(CONCURRENCY)
    headers = {"Authorization": aiohttp.encode_basic_auth(sid, secret)}
    timeout = aiohttp.ClientTimeout(total=10)

    async def timed(i: int) -> None:
        nonlocal errors
        async with slots:
            start = time.perf_counter()
            try:
                await one_request(http, base, i, state)
                latencies.append((time.perf_counter() - start) * 1000)
            except Exception:
                errors += 1

    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
        loop, tasks = asyncio.get_running_loop(), []
        start = loop.time()
        total = int(RATE * DURATION)
        for i in range(total):
            await asyncio.sleep(max(0.0, start + i / RATE - loop.time()))
            tasks.append(asyncio.create_task(timed(i)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    await runner.cleanup()
    return {
        "rest_offered_rps": RATE,
        "rest_achieved_rps": round(len(latencies) / elapsed, 1),
        "rest_requests": len(latencies),
        "rest_errors": errors,
        "rest_p50_ms": round(percentile(latencies, 0.50), 2),
        "rest_p99_ms": round(percentile(latencies, 0.99), 2),
        "rest_mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--client":
        secret = os.environ["CONTROL_BENCH_SECRET"]
        print(json.dumps(asyncio.run(run_client(sys.argv[2], sys.argv[3], secret))))
        return
    result = asyncio.run(run_server())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
