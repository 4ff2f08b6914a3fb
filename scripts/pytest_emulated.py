"""A pytest plugin for the suite under emulation, loaded by scripts/test-arm64.sh (``-p``).

Hypothesis fails any example that takes over 200 ms (its default deadline); under qemu that
times the emulator, not the code, so the deadline is lifted. Every property is still checked.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("emulated", deadline=None)
settings.load_profile("emulated")
