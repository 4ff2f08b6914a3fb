"""The admin status page's room monitor on the real daemon: the SFU's figures for each track
and subscriber of a call, with names shown as text, never as markup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge_sfu.client import Room, connect
from edge_sfu.identity import load_or_create_identity
from edge_sfu.tokens import mint_access_token
from tests.browser.provisioning.pagehelpers import claimed_admin
from tests.support.browser import require_chromium
from tests.support.daemon import running_daemon
from tests.support.media import PatternVideoTrack, ToneAudioTrack
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
PASSWORD = "correct horse battery staple 42"
NASTY = '<img src=x onerror="window.pwned=1">'
ROOM = "stand-up"

ROWS_JS = """
() => [...document.querySelectorAll('#live .monitor-table tbody tr')]
  .map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent))
"""
COLUMNS = [
    "room",
    "from",
    "track",
    "kind",
    "kbps",
    "to",
    "layer",
    "size",
    "fps",
    "loss",
    "jitter",
    "rtt",
    "estimate",
    "priority",
    "why",
]


def _rows(raw: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(COLUMNS, row, strict=True)) for row in raw]


def _complete(raw: list[list[str]]) -> bool:
    """Both publishers' tracks, each with its subscriber, RTT and a bitrate, are shown."""
    rows = _rows(raw)
    return len(rows) == 4 and all(
        r["to"] != "—"
        and r["rtt"] != "—"
        and float(r["kbps"]) > 0
        and (r["kind"] == "audio" or float(r["fps"]) > 0)
        for r in rows
    )


async def test_status_page_monitors_each_track(tmp_path: Path):
    require_chromium()
    overrides = {"unit": {"role": "hub"}, "audio": {"enabled": False}}
    with running_daemon(tmp_path, overrides) as daemon:
        base = await asyncio.to_thread(daemon.wait_ready, 60)
        code = daemon.cli("claim-code").stdout.strip()
        identity = load_or_create_identity(daemon.data_dir)
        ws = base.replace("http://", "ws://") + "/v1/signaling"
        clients: list[Room] = []
        try:
            for name in (NASTY, "bob"):
                token = mint_access_token(
                    identity.signing_key, identity.account_sid, name, room=ROOM
                )
                room = await connect(ws, token)
                clients.append(room)
                await room.publish_track(PatternVideoTrack(320, 240), "<b>cam</b>")
                await room.publish_track(ToneAudioTrack(), "mic")
            async with claimed_admin(base, code, PASSWORD) as (_browser, page):
                raw = await wait_for(lambda: page.evaluate(ROWS_JS), _complete, timeout=60)
                assert _complete(raw), raw
                rows = _rows(raw)
                assert {(r["from"], r["to"], r["kind"]) for r in rows} == {
                    (NASTY, "bob", "video"),
                    (NASTY, "bob", "audio"),
                    ("bob", NASTY, "video"),
                    ("bob", NASTY, "audio"),
                }
                assert {r["room"] for r in rows} == {ROOM}
                for row in rows:
                    assert row["layer"] == "default"  # one layer per Python publisher
                    assert float(row["loss"]) >= 0 and float(row["jitter"]) >= 0
                    assert 0 <= float(row["rtt"]) < 1000
                video = [r for r in rows if r["kind"] == "video"]
                assert {r["track"] for r in video} == {"<b>cam</b>"}
                # Frames the SFU forwards, counted without decoding; a Python publisher
                # declares no layer size, so none is shown.
                for row in video:
                    assert 0 < float(row["fps"]) <= 60 and row["size"] == "—"
                assert all(r["fps"] == "—" and r["size"] == "—" for r in rows if r not in video)
                # Why each subscriber sees what it sees: nobody asked for a priority here.
                assert {r["priority"] for r in video} == {"standard"}, video
                # Names are text: nothing of them became markup anywhere on the page.
                assert await page.evaluate("() => window.pwned === undefined")
                assert await page.locator("#live img, #live b").count() == 0
        finally:
            for room in clients:
                await room.close()
