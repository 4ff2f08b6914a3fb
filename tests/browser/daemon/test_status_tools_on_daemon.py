"""The status page tells the truth about the real daemon, and its actions act on it.

A kiosk with the synthetic camera, a speaker on ALSA's file plugin and a microphone that does
not exist: the page says "In a call — muted (without microphone)", the self-check table shows
the missing microphone, a camera still decodes once a guest receives the small layer, the test
tone reaches the speaker file, the log viewer shows a line (as text) and filters by level,
removing the guest shows it 53204, ending the room shows the next guest 53118, and a revoked
invite redeems nothing (20110).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Page, expect

from appliance.control.client import status as daemon_status
from tests.browser.kiosk.audio_files import (
    alsa_env,
    dominant_frequency,
    kiosk_config,
    write_raw_tone,
)
from tests.browser.provisioning.pagehelpers import claimed_admin, snap
from tests.support.browser import require_chromium
from tests.support.daemon import running_daemon

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery staple 42"
NASTY = '<img src=x onerror="window.pwned=1">'
CONNECTED = "() => document.body.dataset.state === 'connected'"
DISCONNECTED = "() => document.body.dataset.state === 'disconnected'"
LAYERS = [
    {"name": "high", "width": 640, "height": 360, "bitrate": 800_000},
    {"name": "low", "width": 160, "height": 90, "bitrate": 120_000},
]


def redeem(base: str, invite: str, identity: str) -> tuple[int, dict]:
    body = urllib.parse.urlencode({"Invite": invite, "Identity": identity}).encode()
    try:
        with urllib.request.urlopen(base + "/v1/Invites/Redeem", body, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


async def join_as_guest(browser, base: str, invite: str, name: str) -> Page:
    context = await browser.new_context(bypass_csp=True)
    guest = await context.new_page()
    await guest.goto(f"{base}/join/meeting-room?invite={invite}")
    await guest.fill("#identity", name)
    await guest.click("#invite-form button")
    await guest.wait_for_function(CONNECTED, timeout=60_000)
    return guest


async def test_status_page_tells_the_truth_and_acts(tmp_path: Path):
    require_chromium()
    speaker = tmp_path / "speaker.raw"
    config = kiosk_config(LAYERS, "nosuchmicrophone", speaker)
    with running_daemon(tmp_path, config, env=alsa_env(tmp_path)) as daemon:
        base = await asyncio.to_thread(daemon.wait_ready, 60)
        code = daemon.cli("claim-code").stdout.strip()
        async with claimed_admin(base, code, PASSWORD) as (browser, admin):
            admin.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
            words = admin.locator("#state-words")
            await expect(words).to_have_text("Idle (without microphone)", timeout=15_000)

            # The self-check: every part, the missing microphone marked.
            doctor = admin.locator("#doctor-table tbody")
            await expect(doctor.locator("tr", has_text="camera").first).to_contain_text(
                "synthetic", timeout=30_000
            )
            mic_row = doctor.locator("tr", has_text="audio in")
            await expect(mic_row.locator("td").nth(1)).to_have_text("NOT OK")
            await expect(admin.locator("#mic-note")).to_contain_text("no microphone")

            # No layer runs before anyone receives the camera: the page says so.
            await admin.click("#snapshot-take")
            await expect(admin.locator("#snapshot-note")).to_contain_text(
                "No camera layer is running"
            )

            # Join and mute with the simulated buttons: the state in words follows.
            await admin.click("button:has-text('Press join')")
            await expect(words).to_have_text("In a call (without microphone)", timeout=30_000)
            await admin.click("button:has-text('Press mute')")
            await expect(words).to_have_text(
                "In a call — muted (without microphone)", timeout=15_000
            )

            # An invite from the page; a guest with a nasty name joins with it.
            await admin.goto(base + "/admin/invites")
            await admin.fill("#room", "meeting-room")
            await admin.click("button:has-text('Create invite')")
            url = await admin.locator("#invite-url").inner_text()
            invite = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["invite"][0]
            await expect(admin.locator("#issued-invites li")).to_have_count(1)
            guest = await join_as_guest(browser, base, invite, NASTY)

            # The guest receives the camera: a still of the smallest running layer decodes.
            await admin.goto(base + "/admin/status")
            note = admin.locator("#snapshot-note")
            for _ in range(30):
                await admin.click("#snapshot-take")
                await expect(note).not_to_have_text("Taking a picture…", timeout=15_000)
                if "Taken" in await note.inner_text():
                    break
                await asyncio.sleep(1)
            await expect(note).to_contain_text("Taken")
            size = await admin.evaluate(
                """() => new Promise((resolve) => {
                     const img = document.getElementById('snapshot');
                     const done = () => resolve([img.naturalWidth, img.naturalHeight]);
                     img.complete ? done() : img.addEventListener('load', done);
                   })"""
            )
            # The smallest layer being encoded (the guest's tile decides which run).
            stats = daemon_status(daemon.data_dir / "control.sock")["media"]["camera_layers"]
            running = [v["size"] for v in stats.values() if v["encoding"]]
            smallest = min(running, key=lambda s: int(s.split("x")[0]))
            assert "x".join(map(str, size)) == smallest, (size, stats)
            png = await admin.request.get(base + "/admin/status/snapshot?format=png")
            assert png.ok and (await png.body()).startswith(b"\x89PNG")

            # The test tone goes through the mixer to the speaker.
            await admin.click("#speaker-test")
            await expect(admin.locator("#speaker-note")).to_contain_text("Playing")
            await asyncio.sleep(1.5)
            samples = np.frombuffer(speaker.read_bytes(), dtype="<i2")[-48_000 * 3 :]
            freq, rms = dominant_frequency(samples)
            assert abs(freq - 440) < 10 and rms > 300, (freq, rms)

            # Remove the guest: it sees 53204; the log viewer shows the line, as text.
            item = admin.locator("#room-actions li", has_text=NASTY)
            await item.locator("button.remove-participant").click()
            await expect(admin.locator("#room-actions-result")).to_contain_text("removed")
            await guest.wait_for_function(DISCONNECTED, timeout=30_000)
            await expect(guest.locator("#status")).to_contain_text("53204")

            await admin.select_option("#log-level", "INFO")
            await admin.click("#log-refresh")
            line = admin.locator("#log-table tbody tr", has_text="removed from room")
            await expect(line.first).to_contain_text(NASTY)
            assert await admin.evaluate("() => window.pwned === undefined")
            assert await admin.locator("#log-table img").count() == 0
            await admin.select_option("#log-level", "WARNING")
            await expect(admin.locator("#log-table")).to_have_attribute("data-level", "WARNING")
            levels = await admin.locator("#log-table tbody tr td:nth-child(2)").all_inner_texts()
            assert set(levels) <= {"WARNING", "ERROR", "CRITICAL"}, levels
            assert await line.count() == 0
            # The claim code's warning is there, the code itself is not.
            table = await admin.locator("#log-table").inner_text()
            assert "claim code [redacted]" in table and code not in table, table
            await snap(admin, "daemon-status-tools")

            # End the room: the next guest sees 53118, the kiosk goes idle.
            second = await join_as_guest(browser, base, invite, "second guest")
            ended = admin.locator("#room-actions h3", has_text="meeting-room")
            await ended.locator("button.end-room").click()
            await expect(admin.locator("#room-actions-result")).to_contain_text("ended")
            await second.wait_for_function(DISCONNECTED, timeout=30_000)
            await expect(second.locator("#status")).to_contain_text("53118")
            await expect(words).to_have_text("Idle (without microphone)", timeout=30_000)

            # Revoke the invite on the page: redeeming it fails from now on.
            await admin.goto(base + "/admin/invites")
            await admin.click("#issued-invites button:has-text('Revoke')")
            await expect(admin.locator(".flash-ok")).to_contain_text("Invite revoked")
            status, body = await asyncio.to_thread(redeem, base, invite, "third guest")
            assert status == 401 and body["code"] == 20110, body


async def test_microphone_meter_follows_the_capture(tmp_path: Path):
    require_chromium()
    tone = tmp_path / "mic.raw"
    write_raw_tone(tone, 440.0, 120)
    config = kiosk_config(LAYERS, tone, tmp_path / "speaker.raw")
    with running_daemon(tmp_path, config, env=alsa_env(tmp_path)) as daemon:
        base = await asyncio.to_thread(daemon.wait_ready, 60)
        code = daemon.cli("claim-code").stdout.strip()
        async with claimed_admin(base, code, PASSWORD) as (_browser, admin):
            # Outside a call nothing is captured, and the page says so.
            await expect(admin.locator("#mic-note")).to_contain_text("only in a call")
            assert await admin.locator("#mic-meter").evaluate("m => m.value") == 0
            await admin.click("button:has-text('Press join')")
            await expect(admin.locator("#state-words")).to_have_text("In a call", timeout=30_000)
            await expect(admin.locator("#mic-note")).to_contain_text("Live", timeout=10_000)
            # The tone's peak is 0.3 of full scale (about 9830).
            await admin.wait_for_function(
                "() => document.getElementById('mic-meter').value > 8000", timeout=10_000
            )
            await admin.click("button:has-text('Press mute')")
            await expect(admin.locator("#mic-note")).to_contain_text("Muted", timeout=10_000)
