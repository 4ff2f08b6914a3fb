"""Network quality on join pages: one page behind a 400 kbit/s cap drops to 2 or less within
10 s while the others stay at 4 or more, and is back at 4 or more within 15 s of the cap
lifting; a page that only watches, on a good link, is 5."""

from __future__ import annotations

import asyncio
import time

import pytest

from edge_sfu.media import MediaSettings
from tests.support.browser import CHROMIUM, CONNECTED, chromium, open_page, require_chromium
from tests.support.netns import scratch_dir, slow_host
from tests.support.sfu import running_sfu

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(420),
]

CAP_KBIT = 400
SETTLE_S = 15.0
#: What each page knows of everyone's level: its own, and the others' (asked at minimal).
LEVELS_JS = """() => {
  const room = window.edgeRoom;
  const out = {[room.localParticipant.identity]: room.localParticipant.networkQualityLevel};
  for (const p of room.participants.values()) out[p.identity] = p.networkQualityLevel;
  return out;
}"""


async def _join(browser, base: str, token: str, *, watch_only: bool = False):
    page = await open_page(browser, f"{base}/join/room1?token={token}", bypass_csp=True)
    if watch_only:
        await page.uncheck("#want-camera")
        await page.uncheck("#want-mic")
    await page.click("#join-button")
    await page.wait_for_function(CONNECTED, timeout=60_000)
    return page


async def _until(pages, check, seconds: float, log: list[str]) -> float | None:
    """Seconds until ``check(levels by viewer)`` holds (polled every 0.5 s), or None."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        levels = {name: await page.evaluate(LEVELS_JS) for name, page in pages.items()}
        log.append(f"{time.monotonic() - start:5.1f}s {levels}")
        if check(levels):
            return time.monotonic() - start
        await asyncio.sleep(0.5)
    return None


def _estimators(sfu) -> dict[str, str]:
    # each participant's downlink estimator: why its estimate is where it is
    out = {}
    for router in sfu.signaling.routers.values():
        for transport in router.transports.values():
            d = transport.bandwidth.downlink
            status = transport.allocation.status()
            out[transport.participant_id] = (
                f"estimate {d.estimate_bps} delay {int(d._delay.aimd.bitrate)}"
                f" loss-based {int(d._loss.bitrate)} loss {d.loss:.3f} usage {d.usage.name}"
                f" rtt {d.rtt:.3f} probes ok {d.probes.succeeded} failed {d.probes.failed}"
                f" allocation {[(a.allowed_layer, a.reason) for a in status]}"
            )
    return out


def _everyone(levels, who: str) -> list[int | None]:
    # ``who``'s level as every page (its own included) sees it
    return [seen.get(who) for seen in levels.values()]


async def test_a_capped_page_is_poor_and_recovers(tmp_path) -> None:
    require_chromium()
    log: list[str] = []
    with slow_host() as host, scratch_dir() as scripts:
        media = MediaSettings(host_addresses=(host.gateway,))
        async with running_sfu(tmp_path, host=host.gateway, media=media) as sfu:
            secure = f"--unsafely-treat-insecure-origin-as-secure={sfu.base}"
            inside = host.executable(CHROMIUM, scripts)
            async with chromium(secure) as fast, chromium(secure, executable=inside) as slow:
                pages = {
                    "alice": await _join(fast, sfu.base, sfu.token("alice")),
                    "bob": await _join(fast, sfu.base, sfu.token("bob")),
                    "carol": await _join(slow, sfu.base, sfu.token("carol")),
                    "wes": await _join(fast, sfu.base, sfu.token("wes"), watch_only=True),
                }
                names = list(pages)

                def good(levels) -> bool:
                    return all(
                        level is not None and level >= 4
                        for who in names
                        for level in _everyone(levels, who)
                    )

                await asyncio.sleep(SETTLE_S)  # estimates ramp up, layers settle
                settled = await _until(pages, good, 30, log)
                log.append("-- capped")
                host.set_rate(CAP_KBIT)

                def poor(levels) -> bool:
                    carol = _everyone(levels, "carol")
                    return all(level is not None and level <= 2 for level in carol)

                dropped = await _until(pages, poor, 10, log)
                at_drop = {name: await page.evaluate(LEVELS_JS) for name, page in pages.items()}
                quality = {sid: q.report(3) for sid, q in sfu.signaling.signals.quality.items()}
                log.append("-- lifted")
                host.set_rate(None)

                def back(levels) -> bool:
                    return all(
                        level is not None and level >= 4 for level in _everyone(levels, "carol")
                    )

                recovered = await _until(pages, back, 15, log)
                after = {sid: q.report(3) for sid, q in sfu.signaling.signals.quality.items()}
                estimators = _estimators(sfu)
    message = (
        "\n".join(log)
        + f"\nat the drop: {at_drop}\nserver: {quality}\nafter: {after}\n"
        + f"downlink estimators after: {estimators}"
    )
    print(message)
    assert settled is not None, message
    assert dropped is not None, message
    for who in ("alice", "bob", "wes"):
        assert all(level is not None and level >= 4 for level in _everyone(at_drop, who)), message
    assert all(seen["wes"] == 5 for seen in at_drop.values()), message  # only watches
    assert recovered is not None, message
