"""The unit's mDNS announcement, browsed for on loopback with a real zeroconf."""

from __future__ import annotations

import asyncio

from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from provisioning.mdns import HTTPS_TYPE, SERVICE_TYPE, Announcer


async def _browse(zc: AsyncZeroconf, type_: str, name_part: str) -> AsyncServiceInfo:
    found: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_change(
        zeroconf: object, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added and name_part in name and not found.done():
            found.set_result(name)

    browser = AsyncServiceBrowser(zc.zeroconf, [type_], handlers=[on_change])
    try:
        name = await asyncio.wait_for(found, timeout=20)
    finally:
        await browser.async_cancel()
    info = AsyncServiceInfo(type_, name)
    assert await info.async_request(zc.zeroconf, 5000)
    return info


async def test_announcer_found_on_loopback() -> None:
    announcer = Announcer(
        unit_name="Kiosk Lobby",
        role="kiosk",
        version="0.1.0",
        port=8443,
        addresses=["127.0.0.1"],
        interfaces=["127.0.0.1"],
    )
    browser_zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        await announcer.start()
        info = await _browse(browser_zc, SERVICE_TYPE, "Kiosk Lobby")
        props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
        assert props == {"role": "kiosk", "version": "0.1.0", "path": "/admin/"}
        assert info.port == 8443 and info.server == "kiosk-lobby.local."
        assert "127.0.0.1" in info.parsed_addresses()
        https = await _browse(browser_zc, HTTPS_TYPE, "Kiosk Lobby")
        assert https.port == 8443 and https.server == "kiosk-lobby.local."
        await announcer.update(role="hub")
        await asyncio.sleep(0.5)
        info2 = AsyncServiceInfo(SERVICE_TYPE, info.name)
        assert await info2.async_request(browser_zc.zeroconf, 5000)
        assert info2.properties[b"role"] == b"hub"
    finally:
        await announcer.close()
        await browser_zc.async_close()


async def test_disabled_announcer_does_nothing() -> None:
    announcer = Announcer(
        unit_name="x", role="hub", version="1", port=1, addresses=[], enabled=False
    )
    await announcer.start()
    assert announcer._zc is None
    await announcer.close()
