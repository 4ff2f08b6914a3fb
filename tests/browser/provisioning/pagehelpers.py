"""Playwright helpers for the admin pages, reusable by daemon-level end-to-end tests.

Every helper takes a Playwright ``Page`` and the unit's base URL (``http://127.0.0.1:PORT``
or the unit's HTTPS URL), so the same steps drive the test server here and the real daemon.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, Playwright, async_playwright

from tests.support.browser import CHROMIUM, FLAGS

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "provisioning"
VIEWPORTS = ((1280, 800), (390, 844))


async def launch(pw: Playwright) -> Browser:
    """Debian's Chromium with the project's flags (Playwright's own browsers are not used)."""
    return await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, timeout=30_000)


async def claim(page: Page, base: str, code: str, password: str) -> None:
    """Claim an unclaimed unit; ends on the status page."""
    await page.goto(base + "/admin/")
    await page.fill("#code", code)
    await page.fill("#password", password)
    await page.fill("#confirm", password)
    await page.click("button[type=submit]")


@asynccontextmanager
async def claimed_admin(
    base: str, code: str, password: str, **page_options: Any
) -> AsyncIterator[tuple[Browser, Page]]:
    """A Chromium and its page that claimed the unit and landed on the status page."""
    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await browser.new_page(**page_options)
            await claim(page, base, code, password)
            await page.wait_for_url("**/admin/status")
            yield browser, page
        finally:
            await browser.close()


async def sign_in(page: Page, base: str, password: str) -> None:
    """Submit the sign-in form once (the caller checks where it landed)."""
    await page.goto(base + "/admin/login")
    await page.fill("#password", password)
    await page.click("main button[type=submit]")


async def sign_out(page: Page) -> None:
    """Click the header's sign-out button."""
    await page.click("header nav button:has-text('Sign out')")
    await page.wait_for_url("**/admin/login")


LAYOUT_JS = (Path(__file__).parent / "layout_check.js").read_text()


async def layout_faults(
    page: Page, inside: Sequence[str] = (), apart: Sequence[str] = ()
) -> list[str]:
    """Elements sticking out of the viewport, clipped content, horizontal scrolling.

    Also elements matching ``inside`` not wholly inside the viewport (its height too), and
    elements matching ``apart`` that overlap one another.
    """
    options = {"inside": list(inside), "apart": list(apart)}
    faults: list[str] = await page.evaluate(LAYOUT_JS, options)
    return faults


async def snap(
    page: Page,
    name: str,
    *,
    directory: Path = ARTIFACTS,
    inside: Sequence[str] = (),
    apart: Sequence[str] = (),
    settle_ms: int = 50,
) -> None:
    """Screenshot the page at desktop and phone sizes and assert it lays out cleanly."""
    directory.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    for width, height in VIEWPORTS:
        await page.set_viewport_size({"width": width, "height": height})
        await page.wait_for_timeout(settle_ms)
        await page.screenshot(path=str(directory / f"{name}-{width}x{height}.png"), full_page=True)
        faults = await layout_faults(page, inside, apart)
        assert not faults, f"{name} at {width}x{height}: {faults[:5]}"
    if original:
        await page.set_viewport_size(original)
