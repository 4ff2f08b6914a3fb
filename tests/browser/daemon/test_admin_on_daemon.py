"""The admin page on the real daemon: what it changes, the daemon follows.

Claim with the code the console prints, create an API key and see the real REST API accept
it, revoke it and see it refused; change a live room default and see the next room the REST
API creates take it, while the config file holds it; press the simulated join button.
"""

from __future__ import annotations

import asyncio
import base64
import json
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.provisioning.pagehelpers import claimed_admin, snap
from tests.support.browser import require_chromium
from tests.support.daemon import running_daemon
from tests.support.waiting import wait_for

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery staple 42"


def rest(url: str, sid: str, secret: str, data: dict[str, str] | None = None) -> tuple[int, dict]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body)
    token = base64.b64encode(f"{sid}:{secret}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


async def test_admin_page_drives_the_daemon(tmp_path: Path):
    require_chromium()
    with running_daemon(tmp_path, {"audio": {"enabled": False}}) as daemon:
        base = await asyncio.to_thread(daemon.wait_ready, 60)
        code = daemon.cli("claim-code").stdout.strip()
        assert len(code.replace("-", "")) == 16, code
        async with claimed_admin(base, code, PASSWORD) as (_browser, page):
            # The claim code is spent.
            assert "already claimed" in daemon.cli("claim-code").stdout

            # API key: created on the page, accepted then refused by the real REST API.
            page.on("dialog", lambda d: d.accept())
            await page.goto(base + "/admin/keys")
            await page.fill("#name", "booking system")
            await page.click("button:has-text('Create key')")
            sid = (await page.locator("#new-sid").inner_text()).strip()
            secret = (await page.locator("#new-secret").inner_text()).strip()
            status, body = rest(base + "/v1/Rooms", sid, secret)
            assert status == 200 and "rooms" in body, body
            listed = json.loads(daemon.cli("keys", "list", "--json").stdout)
            assert sid in {k["sid"] for k in listed}

            # A live setting: the file holds it and the next REST room takes it.
            await page.goto(base + "/admin/settings")
            await page.fill("#f-rooms-max_participants", "7")
            await page.click("#save")
            await expect(page.locator(".flash-ok").first).to_contain_text("saved")
            config = tomllib.loads(daemon.config.read_text())
            assert config["rooms"]["max_participants"] == 7
            status, room = rest(base + "/v1/Rooms", sid, secret, {"UniqueName": "after-save"})
            assert status == 201 and room["max_participants"] == 7, room
            # A bad value: a message next to the field, and the file is unchanged.
            before = daemon.config.read_bytes()
            await page.goto(base + "/admin/settings")
            await page.fill("#f-rooms-max_participants", "500")
            await page.click("#save")
            await expect(page.locator("#f-rooms-max_participants-err")).to_contain_text("50")
            assert daemon.config.read_bytes() == before
            await snap(page, "daemon-settings-error")

            # The simulated join button on the status page joins the kiosk to its room.
            await page.goto(base + "/admin/status")
            await page.click("button:has-text('Press join')")
            await wait_for(lambda: _in_call(daemon), timeout=30, what="kiosk in call")
            assert _in_call(daemon)

            # Revoked on the page: the REST API refuses the key at once.
            await page.goto(base + "/admin/keys")
            await page.click(f"li[data-sid='{sid}'] button:has-text('Revoke')")
            await expect(page.locator(".flash-ok")).to_contain_text("revoked")
            status, body = rest(base + "/v1/Rooms", sid, secret)
            assert status == 401 and body["code"] == 20003, body


def _in_call(daemon) -> bool:
    return daemon.status()["state"] == "in_call"
