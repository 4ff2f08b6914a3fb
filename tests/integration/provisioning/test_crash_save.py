"""A crash while saving the config leaves the old or the new file, never a broken one.

A child process saves through ``edge_common.atomic.atomic_write`` (what every config save
uses) and is SIGKILLed between writing the temporary file and renaming it, and then at
random moments of a save loop.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import tomli_w

from tests.support.provisioning_backend import default_config

ROOT = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent(
    """
    import os, sys, time, tomli_w
    from edge_common import atomic
    from tests.support.provisioning_backend import default_config

    path, mode = sys.argv[1], sys.argv[2]
    new = default_config("new-name")
    new["audio"]["volume"] = 5
    # Big enough that a torn write would be visible.
    new["network"]["stun_servers"] = ["stun:host%d.example:3478" % i for i in range(2000)]
    payload = tomli_w.dumps(new)
    if mode == "between":
        real_replace = os.replace
        def blocking_replace(src, dst):
            print("WRITTEN", flush=True)  # the temp file is complete and fsynced
            time.sleep(60)                 # the parent kills us here
            real_replace(src, dst)
        atomic.os.replace = blocking_replace
        atomic.atomic_write(path, payload)
    else:
        print("LOOP", flush=True)
        old = tomli_w.dumps(__import__("tomllib").loads(open(path).read()))
        for i in range(100000):
            atomic.atomic_write(path, payload if i % 2 else old)
    """
)


def _spawn(path: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _check(path: Path) -> str:
    data = tomllib.loads(path.read_text())
    name = data["unit"]["name"]
    assert name in ("kiosk-1", "new-name")
    if name == "new-name":
        assert len(data["network"]["stun_servers"]) == 2000 and data["audio"]["volume"] == 5
    else:
        assert data == default_config()
    return str(name)


def test_kill_between_write_and_rename_keeps_old(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(default_config()))
    child = _spawn(path, "between")
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # bounded: the child prints within a second or two
        assert line.strip() == "WRITTEN"
        temps = list(tmp_path.glob(".config.toml.*.tmp"))
        assert temps and temps[0].stat().st_size > 10_000  # the new file was really written
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert _check(path) == "kiosk-1"


def test_kill_at_random_moments_never_breaks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(default_config()))
    rng = random.Random(1234)
    seen = set()
    for _ in range(12):
        child = _spawn(path, "loop")
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "LOOP"
            time.sleep(rng.uniform(0.01, 0.25))
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=10)
        seen.add(_check(path))
    assert seen  # every kill left a whole file (old or new)
