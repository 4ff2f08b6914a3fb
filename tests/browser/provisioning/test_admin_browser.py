"""The admin pages in real headless Chromium: claim, sign-in, lockout, settings, keys,
invites, export/import; screenshots at desktop and phone sizes with layout checks."""

from __future__ import annotations

import tomllib

import pytest
from playwright.async_api import Page, expect

from provisioning.claim import current_claim_code
from tests.support.provisioning_app import PASSWORD, basic

from .conftest import Unit
from .pagehelpers import claim, sign_in, sign_out, snap

pytestmark = pytest.mark.browser


async def _claimed(page: Page, unit: Unit) -> None:
    code = current_claim_code(unit.data_dir)
    assert code
    await claim(page, unit.base, code, PASSWORD)
    await page.wait_for_url("**/admin/status")


async def test_claim_sign_in_and_lockout(page: Page, unit: Unit) -> None:
    code = current_claim_code(unit.data_dir)
    assert code
    await page.goto(unit.base + "/admin/")
    await expect(page).to_have_url(unit.base + "/admin/claim")
    await snap(page, "claim")
    await claim(page, unit.base, "WRNG-CODE-WRNG-CODE", PASSWORD)
    await expect(page.locator("#code-err")).to_have_text("That claim code is not right.")
    await snap(page, "claim-wrong-code")
    await claim(page, unit.base, code, PASSWORD)
    await page.wait_for_url("**/admin/status")
    # Live status arrives over server-sent events.
    await page.wait_for_selector("#live[data-updated]")
    await expect(page.locator("#live")).to_contain_text("kiosk")
    await expect(page.locator("#live")).to_contain_text("2400 kbit/s")
    await expect(page.locator("#live")).to_contain_text("<b>camera</b> restarted")
    await snap(page, "status")
    # The session cookie as the browser holds it.
    cookie = next(c for c in await page.context.cookies() if c["name"] == "edge_admin")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0

    await sign_out(page)
    await snap(page, "login")
    await sign_in(page, unit.base, "not the password!")
    await expect(page.locator("#password-err")).to_contain_text("Wrong password. 4 attempts")
    await sign_in(page, unit.base, PASSWORD)
    await page.wait_for_url("**/admin/status")

    await sign_out(page)
    for i in range(5):
        await sign_in(page, unit.base, f"wrong password {i}")
    await expect(page.locator("#lockout")).to_contain_text("Sign-in is locked")
    await expect(page.locator("#lockout")).to_contain_text("reset-password")
    await snap(page, "lockout")
    await page.goto(unit.base + "/admin/login")
    await expect(page.locator("#lockout")).to_be_visible()


async def test_settings_follow_to_file_and_daemon(page: Page, unit: Unit) -> None:
    await _claimed(page, unit)
    await page.goto(unit.base + "/admin/settings")
    await snap(page, "settings")
    await page.fill("#f-audio-volume", "35")
    await page.fill("#f-unit-name", "meeting-room")
    await page.click("#save")
    await expect(page.locator(".flash-ok").first).to_have_text("Settings saved.")
    await expect(page.locator(".flash-warn")).to_contain_text("unit.name")
    await expect(page.locator("#restart")).to_be_visible()
    data = tomllib.loads(unit.backend.config_path.read_text())
    assert data["audio"]["volume"] == 35 and data["unit"]["name"] == "meeting-room"
    assert unit.backend.live["audio.volume"] == 35  # applied live by the "daemon"
    await expect(page.locator("header .brand")).to_have_text("meeting-room")
    await snap(page, "settings-saved")
    # A bad value: message next to the field, nothing saved.
    before = unit.backend.config_path.read_bytes()
    await page.fill("#f-audio-capture_device", "<script>alert(1)</script>")
    await page.fill("#f-room-max_participants", "99999")
    await page.click("#save")
    await expect(page.locator("#f-room-max_participants-err")).to_have_text(
        "Use a value of at most 16."
    )
    await expect(page.locator("#f-audio-capture_device-err")).to_have_text(
        "Remove the < > characters and control characters."
    )
    await expect(page.locator("#f-audio-capture_device")).to_have_value("<script>alert(1)</script>")
    assert unit.backend.config_path.read_bytes() == before
    await snap(page, "settings-errors")


async def test_keys_rest_invites_export_import(page: Page, unit: Unit) -> None:
    await _claimed(page, unit)
    page.on("dialog", lambda d: d.accept())
    await page.goto(unit.base + "/admin/keys")
    await page.fill("#name", "booking system")
    await page.click("button:has-text('Create key')")
    sid = (await page.locator("#new-sid").inner_text()).strip()
    secret = (await page.locator("#new-secret").inner_text()).strip()
    assert sid.startswith("SK") and len(secret) > 20
    await snap(page, "keys-created")
    rest = await unit.client.get("/v1/Rooms", headers=basic(sid, secret))
    assert rest.status == 200
    await page.goto(unit.base + "/admin/keys")
    await expect(page.locator("#keys")).to_contain_text(sid)
    await expect(page.locator("body")).not_to_contain_text(secret)
    await page.click(f"li[data-sid='{sid}'] button:has-text('Revoke')")
    await expect(page.locator(".flash-ok")).to_contain_text("revoked")
    rest = await unit.client.get("/v1/Rooms", headers=basic(sid, secret))
    assert rest.status == 401
    await snap(page, "keys")

    await page.goto(unit.base + "/admin/invites")
    await page.fill("#room", "lobby")
    await page.click("button:has-text('Create invite')")
    await expect(page.locator("#invite-url")).to_contain_text("/join/lobby")
    width = await page.locator("img.qr").evaluate("img => img.naturalWidth")
    assert width > 0
    await snap(page, "invites")

    await page.goto(unit.base + "/admin/system")
    await snap(page, "system")
    async with page.expect_download() as dl_info:
        await page.click("button:has-text('Download')")
    download = await dl_info.value
    exported = (await download.path()).read_text()
    assert "turn-secret-value-ABC" not in exported and "volume = 80" in exported
    changed = unit.data_dir.parent / "other-unit.toml"
    changed.write_text(exported.replace("volume = 80", "volume = 21"))
    await page.set_input_files("#config", str(changed))
    await page.click("button:has-text('Import')")
    await expect(page.locator(".flash-ok")).to_have_text("Configuration imported.")
    data = tomllib.loads(unit.backend.config_path.read_text())
    assert data["audio"]["volume"] == 21
    assert data["network"]["turn_credential"] == "turn-secret-value-ABC"

    for name in ("tls", "password"):
        await page.goto(f"{unit.base}/admin/{name}")
        await snap(page, name)
    await page.goto(unit.base + "/admin/status")
    await page.click("button:has-text('Press mute')")
    await page.wait_for_url("**/admin/status")
    assert unit.backend.presses == ["mute"]


async def test_layout_check_catches_faults(page: Page) -> None:
    """The layout checker itself: a too-wide element and a clipped one are reported."""
    from .pagehelpers import layout_faults

    await page.set_viewport_size({"width": 390, "height": 844})
    await page.set_content(
        '<body style="margin:0"><div id="wide" style="width:600px">x</div>'
        '<p id="clip" style="width:50px;overflow:hidden;white-space:nowrap">'
        "a long line that does not fit</p></body>"
    )
    faults = await layout_faults(page)
    assert any("horizontal scroll" in f for f in faults)
    assert any("div#wide" in f for f in faults) and any("p#clip" in f for f in faults)


async def test_layout_check_inside_and_apart(page: Page) -> None:
    """Below the fold and overlapping elements are reported when asked; an ellipsis is not."""
    from .pagehelpers import layout_faults

    await page.set_viewport_size({"width": 390, "height": 844})
    await page.set_content(
        '<body style="margin:0"><div id="a" style="height:100px">a</div>'
        '<div id="b" style="margin-top:-50px;height:100px">b</div>'
        '<button id="low" style="margin-top:900px">low</button>'
        '<p id="cut" style="width:50px;overflow:hidden;white-space:nowrap;'
        'text-overflow:ellipsis">a long line that does not fit</p></body>'
    )
    assert await layout_faults(page) == []
    faults = await layout_faults(page, inside=["button"], apart=["#a", "#b"])
    assert any("button#low not inside" in f for f in faults), faults
    assert any("div#a overlaps div#b" in f for f in faults), faults
    assert len(faults) == 2, faults
