"""Suite-wide: nothing a test starts announces itself beyond loopback.

Set before any test runs, so in-process announcers and every child process (daemons,
including one that restarts itself after a factory reset) inherit it.
"""

from __future__ import annotations

import os

import pytest

from provisioning.mdns import LOOPBACK_ONLY_ENV


def pytest_configure(config: pytest.Config) -> None:
    os.environ[LOOPBACK_ONLY_ENV] = "1"
