"""The sysfs files a Raspberry Pi exposes for temperature and throttling, under a test root."""

from __future__ import annotations

from pathlib import Path


def write_pi_sysfs(root: Path, *, temp: str, throttled: str) -> Path:
    """Write ``root``/sys as a Pi has it: a cpu-thermal zone and the firmware throttle flags.

    ``temp`` is the zone's millidegrees file content and ``throttled`` the firmware's
    ``get_throttled`` content, both as the kernel writes them. Returns ``root``.
    """
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text(f"{temp}\n")
    (zone / "type").write_text("cpu-thermal\n")
    firmware = root / "sys/devices/platform/soc/soc:firmware"
    firmware.mkdir(parents=True)
    (firmware / "get_throttled").write_text(f"{throttled}\n")
    return root
