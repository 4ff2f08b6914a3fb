"""The landing page at ``/`` on the real daemon: what the unit is, a way into a room, the admin.

A person with a link pastes it (or the room and the token or invite they were given) and lands
on the join page of that room on this unit: an invite asks for their name, a token joins.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from appliance.control.client import status
from tests.browser.provisioning.pagehelpers import launch, snap
from tests.support.browser import require_chromium
from tests.support.daemon import running_daemon
from tests.support.waiting import wait_for

pytestmark = pytest.mark.browser


def participants(sock: Path) -> set[str]:
    rooms = status(sock)["rooms"]
    return {p["identity"] for room in rooms for p in room["participants"]}


async def test_landing_page_shows_the_unit_and_joins_rooms(tmp_path: Path):
    require_chromium()
    overrides = {"unit": {"name": "room-4b"}, "audio": {"enabled": False}}
    with running_daemon(tmp_path, overrides) as daemon:
        base = await asyncio.to_thread(daemon.wait_ready, 60)
        invite = daemon.cli("invite", "--room", "standup").stdout.strip()
        token = daemon.cli("token", "--identity", "alice", "--room", "standup").stdout.strip()
        assert "/join/standup?invite=" in invite and token.count(".") == 2
        async with async_playwright() as pw:
            browser = await launch(pw)
            try:
                page = await browser.new_page()
                await page.goto(base + "/")
                # The unit: its name, its role in words and its state as the status line says.
                await expect(page).to_have_title("room-4b")
                await expect(page.locator("h1")).to_have_text("room-4b")
                await expect(page.locator("#unit-role")).to_contain_text("kiosk: a meeting-room")
                await expect(page.locator("#unit-state")).to_have_text(
                    status(daemon.data_dir / "control.sock")["status"]
                )
                await expect(page.locator("#unit-missing")).to_have_text("audio")
                # The favicon is linked and served, here and on the join and admin pages.
                icon = await page.get_attribute("link[rel=icon]", "href")
                assert icon == "/favicon.svg"
                for path in ("/favicon.ico", "/favicon.svg"):
                    reply = await page.request.get(base + path)
                    assert reply.status == 200
                    assert reply.headers["content-type"].startswith("image/svg+xml")
                    assert (await reply.text()).startswith("<svg")
                await snap(page, "landing")

                # Nothing entered, then a link that is not a join link: said next to the field.
                await page.click("#join button[type=submit]")
                await expect(page.locator("#join-link-err")).to_contain_text("Paste the link")
                await page.fill("#join-link", base + "/admin/keys")
                await page.click("#join button[type=submit]")
                await expect(page.locator("#join-link-err")).to_contain_text("not a join link")
                await expect(page.locator("#join-link")).to_have_value(base + "/admin/keys")
                # A room without a code, and a code that is not one.
                await page.fill("#join-link", "")
                await page.fill("#join-room", "standup")
                await page.fill("#join-code", "not a token")
                await page.click("#join button[type=submit]")
                await expect(page.locator("#join-code-err")).to_contain_text("not a token")
                await expect(page.locator("#join-room")).to_have_value("standup")

                # The invite link as the command printed it: the join page asks for a name.
                await page.goto(base + "/")
                await page.fill("#join-link", invite)
                await page.click("#join button[type=submit]")
                await page.wait_for_url(base + "/join/standup")
                await expect(page.locator("#room-name")).to_have_text("standup")
                await expect(page.locator("#invite-form")).to_be_visible()

                # The room and a token: the join page joins the room on this unit as alice.
                await page.goto(base + "/")
                await page.fill("#join-room", "standup")
                await page.fill("#join-code", token)
                await page.click("#join button[type=submit]")
                await page.wait_for_url(base + "/join/standup")
                await page.click("#join-button")
                await expect(page.locator("#status")).to_have_text("connected", timeout=30_000)
                sock = daemon.data_dir / "control.sock"
                await wait_for(
                    lambda: participants(sock), lambda p: "alice" in p, 20, "alice in the room"
                )

                # The admin entry, and the admin pages link the same icon.
                await page.goto(base + "/")
                await page.click("a:has-text('Admin pages')")
                await page.wait_for_url("**/admin/claim")
                assert await page.get_attribute("link[rel=icon]", "href") == "/favicon.svg"
            finally:
                await browser.close()
