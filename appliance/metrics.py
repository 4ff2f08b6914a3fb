"""``/metrics``: the unit's Prometheus metrics, and who may read them.

The SFU's own series come from ``edge_sfu.metrics.SfuCollector``; this module adds the
unit's: how late the event loop runs, CPU temperature and throttling, recording disk use,
and the process's CPU and memory (``prometheus_client``'s process collector). Everything is
read at scrape time; the only thing that runs between scrapes is the event-loop probe.

Access: requests from this machine's loopback address are served; any other client needs
``Authorization: Bearer <metrics.token>`` (compared in constant time), and with no token
configured every other client is refused. Both settings apply live.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from edge_common.lifecycle import TaskSet
from edge_sfu.metrics import SfuCollector
from edge_sfu.recording.service import RECORDINGS_DIR
from provisioning.sysinfo import THROTTLE_BITS, SysInfo

from .state import DAEMON, DaemonState

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("appliance.metrics", CollectorRegistry)
#: How often the event-loop probe wakes up (seconds).
LOOP_PROBE_INTERVAL = 0.5


class LoopLag:
    """How late the event loop runs callbacks: a probe sleeps a fixed interval and
    measures how much later than asked it woke up.

    ``last`` is the latest lateness, ``worst`` the largest since the previous scrape
    (``take_worst`` resets it), so a stall between two scrapes is not missed.
    """

    def __init__(self, interval: float = LOOP_PROBE_INTERVAL) -> None:
        self.interval = interval
        self.last = 0.0
        self._worst = 0.0
        self._tasks = TaskSet("loop lag probe")

    def start(self) -> None:
        """Start the probe on the running loop."""
        self._tasks.spawn(self._run(), name="loop-lag")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self.interval)
            self.last = max(0.0, loop.time() - asked - self.interval)
            self._worst = max(self._worst, self.last)

    def take_worst(self) -> float:
        """The largest lateness since the previous call."""
        worst, self._worst = max(self._worst, self.last), 0.0
        return worst

    async def close(self) -> None:
        """Stop the probe."""
        await self._tasks.close()


class UnitCollector(Collector):
    """The unit's own series: event loop, temperature, throttling, recordings."""

    def __init__(self, lag: LoopLag, sysinfo: SysInfo, data_dir: Path) -> None:
        self._lag = lag
        self._sysinfo = sysinfo
        self._recordings = data_dir / RECORDINGS_DIR

    def describe(self) -> Iterable[Metric]:
        """No description: registering must not read sensors."""
        return []

    def collect(self) -> Iterator[Metric]:
        """One scrape of the unit's series."""
        yield GaugeMetricFamily(
            "edge_event_loop_lag_seconds",
            "How late the event loop ran a timer at the latest probe.",
            value=self._lag.last,
        )
        yield GaugeMetricFamily(
            "edge_event_loop_lag_max_seconds",
            "The largest event-loop lateness since the previous scrape.",
            value=self._lag.take_worst(),
        )
        yield GaugeMetricFamily(
            "edge_recordings_bytes",
            "Bytes of recordings and compositions on disk (the data directory's "
            f"{RECORDINGS_DIR}/).",
            value=_tree_size(self._recordings),
        )
        temps = self._sysinfo.temperatures()
        if temps:
            family = GaugeMetricFamily(
                "edge_cpu_temperature_celsius",
                "Temperature of each thermal zone (/sys/class/thermal); absent where unreadable.",
                labels=["zone"],
            )
            for zone, celsius in sorted(temps.items()):
                family.add_metric([zone], celsius)
            yield family
        flags = self._sysinfo.throttled()
        if flags is not None:
            family = GaugeMetricFamily(
                "edge_cpu_throttled",
                "1 when the board's firmware reports this throttling flag (get_throttled); "
                "absent on boards that do not report it.",
                labels=["flag"],
            )
            for text in THROTTLE_BITS.values():
                family.add_metric([text], 1.0 if text in flags else 0.0)
            yield family


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += (Path(dirpath) / name).stat().st_size
            except OSError:
                continue  # removed while walking
    return total


def is_loopback(remote: str | None) -> bool:
    """Whether a request's peer address is this machine's loopback."""
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a Unix socket peer or garbage: not trusted


def scrape_allowed(remote: str | None, authorization: str | None, token: str) -> bool:
    """The access decision: loopback always; others with the configured bearer token."""
    if is_loopback(remote):
        return True
    if not token or not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


async def handle_metrics(request: web.Request) -> web.Response:
    """``GET /metrics`` in the Prometheus text format."""
    state = request.app[DAEMON]
    token = state.settings.metrics.token
    if not scrape_allowed(request.remote, request.headers.get("Authorization"), token):
        # The same answer with or without a wrong token: nothing to learn by probing.
        return web.Response(
            status=401 if token else 403,
            text="metrics: this address needs the metrics token\n"
            if token
            else "metrics: served to this machine only (set metrics.token for others)\n",
            headers={"WWW-Authenticate": "Bearer"} if token else None,
        )
    started = time.perf_counter()
    body = generate_latest(request.app[REGISTRY])
    log.debug("metrics scrape took %.1f ms", (time.perf_counter() - started) * 1000)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics(app: web.Application, state: DaemonState) -> None:
    """Mount ``/metrics`` on the daemon's application and start the loop probe with it."""
    lag = LoopLag()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SfuCollector(app, lambda: state.settings.metrics.label_names))
    registry.register(UnitCollector(lag, SysInfo(use_vcgencmd=False), state.unit.data_dir))
    registry.register(ProcessCollector(namespace="edge", registry=None))
    app[REGISTRY] = registry
    app.router.add_get(METRICS_PATH, handle_metrics)

    async def probe(_app: web.Application) -> AsyncIterator[None]:
        lag.start()
        try:
            yield
        finally:
            await lag.close()

    app.cleanup_ctx.append(probe)
