"""The composition root loads no media stack until a call needs it (the lazy-import rule).

aiortc, PyAV and numpy cost about 45 MB of RSS and a fifth of a second to import. Every module
of ``appliance`` but the call itself (``appliance.kiosk.call``, imported on the first join
press) must import, and the daemon's application must build and report its status, without
them. ``tests/integration/daemon/test_idle_imports.py`` checks the same on a running daemon;
this is the fast check, in a fresh interpreter so that nothing imported before counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("aiortc", "av", "numpy")
#: Modules that import the media stack on purpose; the daemon imports them only when needed.
LAZY = ("appliance.kiosk.call", "appliance.field.whip")

CHECK = """
import importlib, json, pkgutil, sys
from pathlib import Path

import appliance
from appliance.config import parse_settings
from appliance.state import DaemonState

heavy, lazy, data_dir = {heavy!r}, {lazy!r}, Path(sys.argv[1])
for mod in pkgutil.walk_packages(appliance.__path__, "appliance."):
    if mod.name not in lazy:
        importlib.import_module(mod.name)
after_import = sorted(m for m in heavy if m in sys.modules)

from appliance.app import build_app
from appliance.status import status_summary

settings = parse_settings({{
    "unit": {{"role": "kiosk"}},
    "http": {{"listen": "127.0.0.1:0", "tls": False}},
    "camera": {{"backend": "synthetic", "encoder": "software"}},
    "gpio": {{"pin_factory": "mock"}},
    "provisioning": {{"mdns": False}},
}})
state = DaemonState.open(settings, data_dir / "config.toml", data_dir)
build_app(state)
status_summary(state)
after_build = sorted(m for m in heavy if m in sys.modules)

for name in lazy:
    importlib.import_module(name)
after_lazy = sorted(m for m in heavy if m in sys.modules)
print(json.dumps({{"import": after_import, "build": after_build, "lazy": after_lazy}}))
"""


def test_appliance_imports_and_builds_without_the_media_stack(tmp_path: Path) -> None:
    code = CHECK.format(heavy=HEAVY, lazy=LAZY)
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["import"] == []
    assert loaded["build"] == []
    # The check sees these packages when they are there: the call really loads them all.
    assert loaded["lazy"] == sorted(HEAVY)
