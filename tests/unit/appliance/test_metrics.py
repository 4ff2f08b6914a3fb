"""The unit's own metrics: temperature and throttling from the board's files, the event
loop's lateness, and the scrape access decision."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from appliance.metrics import LoopLag, UnitCollector, scrape_allowed
from provisioning.sysinfo import SysInfo
from tests.support.pi_sysfs import write_pi_sysfs


def scrape(collector: UnitCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_temperature_throttling_and_recordings(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "recordings" / "RM1").mkdir(parents=True)
    (data_dir / "recordings" / "RM1" / "a.mka").write_bytes(b"x" * 1500)
    # under-voltage now, throttled before
    root = write_pi_sysfs(tmp_path / "root", temp="61234", throttled="0x50005")
    sysinfo = SysInfo(root, use_vcgencmd=False)
    samples = scrape(UnitCollector(LoopLag(), sysinfo, data_dir))
    assert samples[("edge_cpu_temperature_celsius", (("zone", "cpu-thermal"),))] == 61.234
    throttled = {
        dict(labels)["flag"]: value
        for (name, labels), value in samples.items()
        if name == "edge_cpu_throttled"
    }
    assert throttled["under-voltage now"] == 1
    assert throttled["throttled now"] == 1
    assert throttled["under-voltage has occurred"] == 1
    assert throttled["soft temperature limit now"] == 0
    assert samples[("edge_recordings_bytes", ())] == 1500


def test_absent_where_the_board_says_nothing(tmp_path: Path) -> None:
    sysinfo = SysInfo(tmp_path / "empty", use_vcgencmd=False)
    samples = scrape(UnitCollector(LoopLag(), sysinfo, tmp_path / "data"))
    names = {name for name, _ in samples}
    assert "edge_cpu_temperature_celsius" not in names
    assert "edge_cpu_throttled" not in names
    assert samples[("edge_recordings_bytes", ())] == 0


async def test_loop_lag_sees_a_blocked_loop() -> None:
    lag = LoopLag(interval=0.05)
    lag.start()
    try:
        await asyncio.sleep(0.2)
        lag.take_worst()
        time.sleep(0.3)  # the stall under test
        await asyncio.sleep(0.1)
        assert lag.take_worst() >= 0.2
        await asyncio.sleep(0.15)
        assert lag.take_worst() < 0.25  # reset by the scrape before
    finally:
        await lag.close()


def test_access_decision() -> None:
    assert scrape_allowed("127.0.0.1", None, "")
    assert scrape_allowed("127.0.0.53", None, "tok")
    assert scrape_allowed("::1", None, "")
    assert not scrape_allowed("192.0.2.7", None, "")
    assert not scrape_allowed("192.0.2.7", "Bearer ", "")
    assert not scrape_allowed("192.0.2.7", "Bearer tok", "")
    assert not scrape_allowed("192.0.2.7", None, "tok")
    assert not scrape_allowed("192.0.2.7", "Bearer tok2", "tok")
    assert not scrape_allowed("192.0.2.7", "tok", "tok")
    assert scrape_allowed("192.0.2.7", "Bearer tok", "tok")
    assert scrape_allowed("fd00::9", "bearer tok", "tok")
    assert not scrape_allowed(None, None, "tok")
    assert not scrape_allowed("not-an-address", None, "")
