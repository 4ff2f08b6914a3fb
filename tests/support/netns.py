"""A slow host on this machine: a network namespace behind a veth pair capped with ``tbf``.

The kernel here has no ``netem``, so a link is shaped by rate only (``tbf``): a page in the
namespace reaches the unit over the veth and nowhere else, at the rate the test sets and
changes mid-call. Everything stays on this machine; the namespace and the veth are removed
on exit, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: tbf's bucket and queue: a 16 kB burst and at most 100 ms of queueing, as a home router
#: with a modest buffer would have (the recipe in the project's testing notes).
BURST = "16kb"
LATENCY = "100ms"
#: The project's root: a Python program in the namespace imports the code under test.
ROOT = Path(__file__).resolve().parents[2]


def require_netns() -> None:
    """Skip (with the reason) where network namespaces cannot be made."""
    if shutil.which("ip") is None or shutil.which("tc") is None:
        pytest.skip("iproute2 (ip, tc) is not installed")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=20)


@dataclass
class SlowHost:
    """One namespace and the capped link to it.

    ``address`` is the namespace's side, ``gateway`` this side's: a server the namespace's
    browser should reach listens on ``gateway``.
    """

    name: str
    outer: str
    inner: str
    gateway: str
    address: str
    rate_kbit: int | None = None

    def set_rate(self, kbit: int | None) -> None:
        """Cap both directions at ``kbit`` kbit/s, or lift the cap (``None``)."""
        for prefix, dev in ((), self.outer), (("ip", "netns", "exec", self.name), self.inner):
            if kbit is None:
                with contextlib.suppress(subprocess.CalledProcessError):
                    _run(*prefix, "tc", "qdisc", "del", "dev", dev, "root")
            else:
                _run(
                    *prefix, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
                    "rate", f"{kbit}kbit", "burst", BURST, "latency", LATENCY,
                )  # fmt: skip
        self.rate_kbit = kbit

    @property
    def inside(self) -> tuple[str, ...]:
        """The command prefix that runs a program inside the namespace."""
        return ("ip", "netns", "exec", self.name)

    def executable(self, program: str, directory: Path) -> str:
        """A script that runs ``program`` inside the namespace (for Playwright's launcher)."""
        script = directory / f"in-{self.name}"
        script.write_text(f'#!/bin/sh\nexec ip netns exec {self.name} {program} "$@"\n')
        script.chmod(0o755)
        return str(script)

    async def python(self, source: str, *args: str, nice: int = 0) -> asyncio.subprocess.Process:
        """Run ``source`` (a Python program, given ``args``) inside the namespace, with this
        project importable, at niceness ``nice``; its stdout is a pipe to read, line by
        line."""
        return await asyncio.create_subprocess_exec(
            *("nice", "-n", str(nice)),
            *self.inside,
            sys.executable,
            "-c",
            source,
            *args,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=str(ROOT),
            stdout=asyncio.subprocess.PIPE,
        )


@contextlib.contextmanager
def slow_host(rate_kbit: int | None = None) -> Iterator[SlowHost]:
    """A fresh namespace on its own /24 behind a veth capped at ``rate_kbit`` (both ways)."""
    require_netns()
    tag = f"{os.getpid() % 10000}{next(_counter)}"
    subnet = 10 + (os.getpid() + next(_counter)) % 200
    host = SlowHost(
        name=f"ea-slow{tag}",
        outer=f"ea-o{tag}",
        inner=f"ea-i{tag}",
        gateway=f"10.201.{subnet}.1",
        address=f"10.201.{subnet}.2",
    )
    try:
        _run("ip", "netns", "add", host.name)
        _run("ip", "link", "add", host.outer, "type", "veth", "peer", "name", host.inner)
        _run("ip", "link", "set", host.inner, "netns", host.name)
        _run("ip", "addr", "add", f"{host.gateway}/24", "dev", host.outer)
        _run("ip", "link", "set", host.outer, "up")
        inside = ("ip", "netns", "exec", host.name)
        _run(*inside, "ip", "addr", "add", f"{host.address}/24", "dev", host.inner)
        _run(*inside, "ip", "link", "set", host.inner, "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        host.set_rate(rate_kbit)
        yield host
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _run("ip", "link", "del", host.outer)
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _run("ip", "netns", "del", host.name)


def _counting() -> Iterator[int]:
    n = 0
    while True:
        yield n
        n += 1


_counter = _counting()


#: Where ``ip netns exec NAME`` finds the files it bind-mounts over /etc for the program.
NETNS_ETC = Path("/etc/netns")


@dataclass
class ResolverHost:
    """A namespace whose programs resolve names from their own hosts file.

    ``ip netns exec`` bind-mounts ``/etc/netns/NAME/hosts`` over ``/etc/hosts`` (and
    ``resolv.conf`` likewise) for each program it starts, so a program inside resolves names
    from that file only and this machine's own files stay untouched. The file is rewritten in
    place (a bind mount holds its inode: a renamed replacement would not be seen). ``net`` is
    the namespace and its link: aiortc gathers no candidate on a loopback address, so a
    WebRTC client inside needs the veth's address to reach a server on the namespace's
    loopback.
    """

    net: SlowHost
    hosts: Path

    @property
    def inside(self) -> tuple[str, ...]:
        """The command prefix that runs a program inside the namespace."""
        return self.net.inside

    def set_names(self, names: dict[str, str]) -> None:
        """Resolve each name of ``names`` to its address from now on (the others fail)."""
        lines = ["127.0.0.1 localhost", *(f"{ip} {name}" for name, ip in names.items())]
        with self.hosts.open("r+") as hosts:  # in place: same inode
            hosts.truncate(0)
            hosts.write("\n".join(lines) + "\n")


@contextlib.contextmanager
def resolver_host() -> Iterator[ResolverHost]:
    """A namespace (``slow_host``, uncapped) whose programs resolve ``localhost`` and nothing
    else until ``set_names``: the DNS server they are told of is the namespace's loopback,
    where nothing answers, so every other lookup fails at once and no query leaves the
    namespace. Its /etc/netns files are removed on exit, whatever happened."""
    with slow_host() as net:
        etc = NETNS_ETC / net.name
        host = ResolverHost(net, etc / "hosts")
        try:
            etc.mkdir(parents=True)
            resolv = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
            (etc / "resolv.conf").write_text(resolv)
            host.hosts.write_text("")
            host.set_names({})
            yield host
        finally:
            shutil.rmtree(etc, ignore_errors=True)
            with contextlib.suppress(OSError):  # another namespace's files may be there
                NETNS_ETC.rmdir()


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary directory for launcher scripts, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="ea-netns-") as name:
        yield Path(name)
