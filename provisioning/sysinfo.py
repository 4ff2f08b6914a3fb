"""System metrics read from ``/proc`` and ``/sys`` (no third-party library).

``root`` is a path prefix so tests can hand in a fake tree with a Pi's thermal zone and
throttling file.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

# Bits of the firmware's get_throttled word, as documented for vcgencmd.
THROTTLE_BITS = {
    0: "under-voltage now",
    1: "ARM frequency capped now",
    2: "throttled now",
    3: "soft temperature limit now",
    16: "under-voltage has occurred",
    17: "ARM frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


def decode_throttled(value: int) -> list[str]:
    """Human-readable flags of a ``get_throttled`` word."""
    return [text for bit, text in THROTTLE_BITS.items() if value & (1 << bit)]


class SysInfo:
    """Collects CPU, memory, temperature, throttling, uptime and versions."""

    def __init__(self, root: Path = Path("/"), *, use_vcgencmd: bool = True) -> None:
        self.root = Path(root)
        self._use_vcgencmd = use_vcgencmd
        self._last_cpu: tuple[int, int] | None = None
        self._versions: dict[str, str] | None = None

    def _read(self, rel: str) -> str | None:
        try:
            return (self.root / rel).read_text()
        except OSError:
            return None

    def cpu_percent(self) -> float | None:
        """CPU busy share since the previous call (``None`` on the first)."""
        text = self._read("proc/stat")
        if not text:
            return None
        fields = [int(x) for x in text.splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        total = sum(fields)
        prev, self._last_cpu = self._last_cpu, (idle, total)
        if prev is None or total <= prev[1]:
            return None
        return round(100.0 * (1 - (idle - prev[0]) / (total - prev[1])), 1)

    def load(self) -> list[float]:
        """1, 5 and 15 minute load averages."""
        text = self._read("proc/loadavg")
        return [float(x) for x in text.split()[:3]] if text else []

    def memory(self) -> dict[str, int]:
        """Total and available memory in kB."""
        text = self._read("proc/meminfo") or ""
        out: dict[str, int] = {}
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                out[key] = int(rest.split()[0])
        return {"total_kb": out.get("MemTotal", 0), "available_kb": out.get("MemAvailable", 0)}

    def temperatures(self) -> dict[str, float]:
        """Each thermal zone's temperature in degrees Celsius."""
        temps: dict[str, float] = {}
        base = self.root / "sys/class/thermal"
        for zone in sorted(base.glob("thermal_zone*")):
            try:
                millideg = int((zone / "temp").read_text().strip())
                kind = (zone / "type").read_text().strip() if (zone / "type").exists() else ""
            except (OSError, ValueError):
                continue
            temps[kind or zone.name] = millideg / 1000.0
        return temps

    def throttled(self) -> list[str] | None:
        """Throttling flags where the Pi reports them; ``None`` elsewhere."""
        text = self._read("sys/devices/platform/soc/soc:firmware/get_throttled")
        if text is not None:
            try:
                return decode_throttled(int(text.strip(), 16))
            except ValueError:
                return None
        exe = shutil.which("vcgencmd") if self._use_vcgencmd else None
        if exe is None:
            return None
        try:
            out = subprocess.run(
                [exe, "get_throttled"], capture_output=True, text=True, timeout=2, check=False
            ).stdout
            return decode_throttled(int(out.strip().split("=", 1)[1], 16))
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            return None

    def uptime_s(self) -> float:
        """Seconds since boot."""
        text = self._read("proc/uptime")
        return float(text.split()[0]) if text else 0.0

    def versions(self) -> dict[str, str]:
        """Versions of the appliance, Python, the OS and the main libraries."""
        if self._versions is None:
            v = {"python": platform.python_version(), "os": platform.platform(terse=True)}
            for dist in ("edge-appliance", "aiohttp", "aiortc", "av", "zeroconf"):
                try:
                    v[dist] = metadata.version(dist)
                except metadata.PackageNotFoundError:
                    continue
            model = self._read("proc/device-tree/model")
            if model:
                v["board"] = model.strip("\x00\n ")
            self._versions = v
        return dict(self._versions)

    def snapshot(self) -> dict[str, Any]:
        """All metrics as one JSON-able dict."""
        return {
            "cpu_percent": self.cpu_percent(),
            "load": self.load(),
            "memory": self.memory(),
            "temperatures_c": self.temperatures(),
            "throttled": self.throttled(),
            "uptime_s": self.uptime_s(),
            "process_uptime_s": round(time.monotonic() - _START, 1),
            "versions": self.versions(),
        }


_START = time.monotonic()
