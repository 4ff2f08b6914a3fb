"""A daemon told to stay on loopback does so whatever its configuration says."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import load_config
from appliance.confinement import LOOPBACK_ONLY_ENV, confine, confinement_problems
from provisioning.mdns import Announcer
from tests.support.daemon import running_daemon

ON = {LOOPBACK_ONLY_ENV: "1"}


def test_defaults_after_a_factory_reset_are_confined(tmp_path: Path) -> None:
    defaults = load_config(tmp_path / "erased.toml")  # what a reset leaves: no file at all
    assert defaults.http.listen.startswith("0.0.0.0:") and defaults.provisioning.mdns
    assert confine(defaults, ON).http.listen == f"127.0.0.1:{defaults.http.listen.split(':')[1]}"
    assert confine(defaults, {}).http.listen == defaults.http.listen
    assert confinement_problems(defaults, ON) == []
    problems = confinement_problems(defaults, {})
    assert any("mdns" in p for p in problems) and any(LOOPBACK_ONLY_ENV in p for p in problems)


def test_announcer_stays_on_loopback_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    args = {"unit_name": "u", "role": "kiosk", "version": "0", "port": 1}
    monkeypatch.setenv(LOOPBACK_ONLY_ENV, "1")
    confined = Announcer(**args, addresses=["192.0.2.7"])  # type: ignore[arg-type]
    assert confined.interfaces == ["127.0.0.1"] and confined.addresses == ["127.0.0.1"]
    monkeypatch.setenv(LOOPBACK_ONLY_ENV, "0")
    free = Announcer(**args, addresses=["192.0.2.7"])  # type: ignore[arg-type]
    assert free.interfaces is None and free.addresses == ["192.0.2.7"]


def test_the_suite_itself_runs_confined() -> None:
    import os

    assert os.environ.get(LOOPBACK_ONLY_ENV) == "1"


def test_harness_refuses_a_daemon_that_could_leave_loopback(tmp_path: Path) -> None:
    with (
        pytest.raises(AssertionError, match="must stay on loopback"),
        running_daemon(tmp_path, {"provisioning": {"mdns": True}}, env={LOOPBACK_ONLY_ENV: ""}),
    ):
        pass
