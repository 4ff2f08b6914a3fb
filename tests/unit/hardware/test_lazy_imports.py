"""Importing every hardware module pulls in no vendor library (they load only when used)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import importlib, pkgutil, sys
import hardware
for mod in pkgutil.walk_packages(hardware.__path__, "hardware."):
    importlib.import_module(mod.name)
vendor = ("picamera2", "libcamera", "alsaaudio", "gpiozero", "av")
loaded = sorted(m for m in vendor if m in sys.modules)
print(",".join(loaded))
"""


def test_no_vendor_library_is_imported_with_the_package() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""
