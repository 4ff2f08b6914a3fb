"""Announce the unit on the LAN with mDNS/DNS-SD (zeroconf).

Two services point at the HTTPS port: ``_https._tcp`` so any browser tool finds the admin
page, and ``_edge-appliance._tcp`` whose TXT record carries role and version so admins and
hubs can find units of their kind. The host record is ``<name>.local``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .names import dns_label

if TYPE_CHECKING:
    from zeroconf import ServiceInfo
    from zeroconf.asyncio import AsyncZeroconf

HTTPS_TYPE = "_https._tcp.local."
SERVICE_TYPE = "_edge-appliance._tcp.local."

log = logging.getLogger(__name__)

#: Set (to anything but ``""`` or ``"0"``) to keep every announcement on loopback, whatever
#: the caller asked for. The test suite sets it for itself and every daemon it starts, so a
#: test daemon never announces on the machine's real interfaces, not even one that a factory
#: reset restarted with the default configuration (the environment survives the restart).
LOOPBACK_ONLY_ENV = "EDGE_APPLIANCE_LOOPBACK_ONLY"


def loopback_only(env: Mapping[str, str] | None = None) -> bool:
    """Whether :data:`LOOPBACK_ONLY_ENV` confines announcements to loopback."""
    value = (os.environ if env is None else env).get(LOOPBACK_ONLY_ENV, "")
    return value not in ("", "0")


class Announcer:
    """Registers the unit's services while running; :meth:`close` withdraws them.

    ``interfaces`` restricts zeroconf to given addresses (tests use ``["127.0.0.1"]``);
    ``enabled=False`` makes start and close do nothing, for the setting that turns it off.
    With :data:`LOOPBACK_ONLY_ENV` set, interfaces and addresses are loopback only.
    """

    def __init__(
        self,
        *,
        unit_name: str,
        role: str,
        version: str,
        port: int,
        addresses: Sequence[str],
        enabled: bool = True,
        interfaces: Sequence[str] | None = None,
        path: str = "/admin/",
    ) -> None:
        self.unit_name = unit_name
        self.host = dns_label(unit_name)
        self.role = role
        self.version = version
        self.port = port
        # Without an address the host record cannot be resolved: fall back to the LAN one.
        self.addresses = list(addresses) or guess_addresses()
        self.enabled = enabled
        self.interfaces = list(interfaces) if interfaces else None
        if loopback_only():
            self.interfaces = ["127.0.0.1"]
            self.addresses = ["127.0.0.1"]
        self.path = path
        self._zc: AsyncZeroconf | None = None
        self._infos: list[ServiceInfo] = []

    def _service_infos(self) -> list[ServiceInfo]:
        from zeroconf import ServiceInfo

        packed = []
        for a in self.addresses:
            try:
                packed.append(ipaddress.ip_address(a.split("%", 1)[0]).packed)
            except ValueError:
                continue
        server = f"{self.host}.local."
        instance = self.unit_name[:63] or self.host
        props = {"role": self.role, "version": self.version, "path": self.path}
        return [
            ServiceInfo(
                t,
                f"{instance}.{t}",
                port=self.port,
                properties=props,
                server=server,
                addresses=packed,
            )
            for t in (HTTPS_TYPE, SERVICE_TYPE)
        ]

    async def start(self) -> None:
        """Register both services (name conflicts are renamed by zeroconf)."""
        if not self.enabled or self._zc is not None:
            return
        # zeroconf loads when the announcement starts: not at all while mDNS is off.
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncZeroconf

        if self.interfaces is not None:
            zc = AsyncZeroconf(interfaces=self.interfaces, ip_version=IPVersion.V4Only)
        else:
            zc = AsyncZeroconf()
        self._zc = zc
        self._infos = self._service_infos()
        for info in self._infos:
            await asyncio.wait_for(
                zc.async_register_service(info, allow_name_change=True), timeout=15
            )
        log.info("announcing %s.local on port %d", self.host, self.port)

    async def update(
        self,
        *,
        role: str | None = None,
        version: str | None = None,
        addresses: Sequence[str] | None = None,
    ) -> None:
        """Change the TXT properties or addresses (the role changed, DHCP gave a new lease)."""
        if role is not None:
            self.role = role
        if version is not None:
            self.version = version
        if addresses is not None and not loopback_only():
            self.addresses = list(addresses) or guess_addresses()
        if self._zc is None:
            return
        new = self._service_infos()
        for old, info in zip(self._infos, new, strict=True):
            info.name = old.name  # keep a conflict-renamed instance name
            await self._zc.async_update_service(info)
        self._infos = new

    async def set_enabled(self, enabled: bool) -> None:
        """Apply the discovery setting live: start or withdraw the announcement."""
        self.enabled = enabled
        if enabled:
            await self.start()
        else:
            await self.close()

    async def close(self) -> None:
        """Withdraw the services and stop zeroconf."""
        zc, self._zc = self._zc, None
        if zc is None:
            return
        try:
            await asyncio.wait_for(zc.async_unregister_all_services(), timeout=5)
        except (TimeoutError, OSError):
            log.debug("mDNS goodbye not sent", exc_info=True)
        await zc.async_close()


def guess_addresses() -> list[str]:
    """The unit's LAN address (the one the default route uses), without sending anything."""
    addrs: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: connect() on UDP only picks a route
            addrs.append(s.getsockname()[0])
        except OSError:
            pass
    return addrs


#: Called with (instance name, TXT properties, addresses) when a unit appears or changes,
#: and with (instance name, None, []) when it withdraws its announcement.
UnitSeen = Callable[[str, dict[str, str] | None, list[str]], None]


class UnitBrowser:
    """Finds the units announcing ``_edge-appliance._tcp`` (a hub lists its field units).

    Confined to loopback like :class:`Announcer` when :data:`LOOPBACK_ONLY_ENV` is set, so a
    test hub only ever sees test units.
    """

    def __init__(self, on_seen: UnitSeen, *, interfaces: Sequence[str] | None = None) -> None:
        self._on_seen = on_seen
        self.interfaces = ["127.0.0.1"] if loopback_only() else interfaces
        self._zc: AsyncZeroconf | None = None
        self._browser: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start browsing."""
        from zeroconf import IPVersion, ServiceStateChange
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        if self.interfaces is not None:
            zc = AsyncZeroconf(interfaces=list(self.interfaces), ip_version=IPVersion.V4Only)
        else:
            zc = AsyncZeroconf()
        self._zc = zc

        def changed(
            zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange
        ) -> None:
            if state_change is ServiceStateChange.Removed:
                self._on_seen(_instance(name, service_type), None, [])
                return
            task = asyncio.get_running_loop().create_task(self._resolve(service_type, name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._browser = AsyncServiceBrowser(zc.zeroconf, [SERVICE_TYPE], handlers=[changed])

    async def _resolve(self, service_type: str, name: str) -> None:
        if self._zc is None:
            return
        info = await self._zc.async_get_service_info(service_type, name, timeout=3000)
        if info is None:
            return
        props = {
            k.decode(errors="replace"): (v or b"").decode(errors="replace")
            for k, v in info.properties.items()
        }
        self._on_seen(_instance(name, service_type), props, info.parsed_addresses())

    async def close(self) -> None:
        """Stop browsing."""
        for task in list(self._tasks):
            task.cancel()
        if self._browser is not None:
            await self._browser.async_cancel()
            self._browser = None
        zc, self._zc = self._zc, None
        if zc is not None:
            await zc.async_close()


def _instance(name: str, service_type: str) -> str:
    return name[: -len(service_type) - 1] if name.endswith("." + service_type) else name
