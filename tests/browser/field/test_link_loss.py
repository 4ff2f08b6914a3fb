"""A hub and two field units on loopback; the hub is stopped for 20 s.

Three real daemons: the hub (``unit.role = "hub"``) and two field units streaming their
synthetic cameras and file microphones to it with the unit's own protocol. The hub's
multi-view page in Chromium shows both live. While the hub is away both field units record
locally and the page shows them reconnecting; within 5 s of the hub's return both are live
again, and each one's local recording (listed on its REST API) covers the outage to within
2 s, as ffprobe measures it.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.browser.kiosk.audio_files import alsa_env, kiosk_config, write_raw_tone
from tests.support.browser import chromium, open_page, require_chromium
from tests.support.daemon import Daemon, free_port, running_daemon
from tests.support.waiting import wait_for, wait_for_sync

OUTAGE_S = 20.0
BACK_WITHIN_S = 5.0
LAYERS = [
    {"name": "main", "width": 320, "height": 180, "bitrate": 300_000},
    {"name": "small", "width": 160, "height": 90, "bitrate": 80_000},
]
UNITS = ("field-a", "field-b")
FIGURES = re.compile(r"(\d+) kbit/s · network [0-5]/5")

TILES = """() => [...document.querySelectorAll('.tile')].map((t) => {
  const v = t.querySelector('video');
  return {identity: t.dataset.identity, state: t.dataset.state,
          text: t.querySelector('.state').textContent,
          frames: v ? v.getVideoPlaybackQuality().totalVideoFrames : 0,
          recording: !t.querySelector('.rec').hidden,
          figures: t.querySelector('.figures').textContent,
          width: v ? v.videoWidth : 0};
})"""


def hub_config(port: int) -> dict[str, dict[str, object]]:
    return {
        "unit": {"name": "hub", "role": "hub"},
        "http": {"listen": f"127.0.0.1:{port}", "tls": False},
        "hub": {"room": "field", "record": True},
        "recordings": {"min_free_mb": 64},
    }


def field_config(tmp: Path, name: str, hub_url: str, key: dict[str, str]) -> dict[str, Any]:
    tone = tmp / f"{name}-mic.raw"
    write_raw_tone(tone, 440.0, 240)
    config: dict[str, Any] = kiosk_config(LAYERS, tone, tmp / f"{name}-speaker.raw")
    config["unit"] = {"name": name, "role": "field"}
    config["kiosk"] = {
        "identity": name,
        "room": "field",
        "remote_url": hub_url,
        "remote_api_key_sid": key["sid"],
        "remote_api_key_secret": key["secret"],
    }
    config["field"] = {"retry_initial": 0.5, "retry_max": 2.0, "retry_jitter": 0.3}
    config["recordings"] = {"min_free_mb": 64}
    return config


def link(unit: Daemon) -> dict[str, Any]:
    return dict(unit.status().get("link") or {})


def page_states(tiles: list[dict[str, Any]]) -> dict[str, str]:
    return {t["identity"]: t["state"] for t in tiles}


async def frames_advance(page: Any, wanted: tuple[str, ...], timeout: float) -> None:
    """Every unit in ``wanted`` is live on the page and its picture moves."""
    before: dict[str, int] = {}

    async def moving() -> bool:
        tiles = {t["identity"]: t for t in await page.evaluate(TILES)}
        ok = True
        for who in wanted:
            tile = tiles.get(who)
            if tile is None or tile["state"] != "live" or tile["width"] == 0:
                ok = False
                continue
            if tile["frames"] <= before.get(who, 10**9):
                ok = False
            before[who] = tile["frames"]
        return ok

    await wait_for(moving, timeout=timeout, interval=0.5, what=f"{wanted} live on the page")


def video_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return float(json.loads(out.stdout)["format"]["duration"])


@pytest.mark.timeout(420)
def test_field_units_ride_out_a_hub_outage(tmp_path: Path):
    require_chromium()
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp: Path) -> None:
    env = alsa_env(tmp)
    port = free_port()
    with ExitStack() as stack:
        hub = stack.enter_context(running_daemon(tmp, hub_config(port), env=env, name="hub"))
        hub_url = hub.wait_ready(60)
        key = hub.api_key()
        viewer = hub.cli("token", "--identity", "wall", "--room", "field")
        assert viewer.returncode == 0, viewer.stderr
        fields = [
            stack.enter_context(
                running_daemon(tmp, field_config(tmp, name, hub_url, key), env=env, name=name)
            )
            for name in UNITS
        ]
        for unit in fields:
            await asyncio.to_thread(unit.wait_ready, 60)
        for unit in fields:
            await wait_for(
                lambda u=unit: link(u).get("state") == "live", timeout=60, what="field unit live"
            )

        async with chromium() as browser:
            page = await open_page(
                browser, f"{hub_url}/admin/hub?token={viewer.stdout.strip()}", bypass_csp=True
            )
            await frames_advance(page, UNITS, 60)
            # the hub records every field unit: the page says so
            await wait_for(
                lambda: page.evaluate(TILES),
                lambda tiles: len(tiles) == 2 and all(t["recording"] for t in tiles),
                timeout=15,
                what="recording indicators",
            )
            # bitrate and network quality, as the hub measures them
            await wait_for(
                lambda: page.evaluate(TILES),
                lambda tiles: (
                    all(FIGURES.fullmatch(t["figures"]) for t in tiles)
                    and all(int(FIGURES.fullmatch(t["figures"])[1]) > 20 for t in tiles)
                ),
                timeout=15,
                what="bitrate and network quality on each tile",
            )
            # Enlarging a tile raises the viewer's priority for that unit's video at the hub.
            await page.click("section.tile[data-identity='field-a']")
            await wait_for(
                lambda: viewer_priorities(hub),
                lambda got: got.get("field-a") == "high" and got.get("field-b") != "high",
                timeout=10,
                what="the enlarged unit's priority at the hub",
            )
            await page.click("section.tile[data-identity='field-a']")
            hub_recordings = hub.rest("/v1/Recordings?PageSize=50", key)["recordings"]

            # The hub goes away.
            assert await asyncio.to_thread(hub.stop) == 0
            stopped_at = time.monotonic()
            for unit in fields:
                await wait_for(
                    lambda u=unit: (
                        link(u).get("state") == "reconnecting" and link(u).get("recording_locally")
                    ),
                    timeout=10,
                    what="field unit reconnecting and recording locally",
                )
                assert "Reconnecting since" in unit.status()["status"]
            await wait_for(
                lambda: _all(page, "reconnecting"), timeout=10, what="page shows reconnecting"
            )
            texts = [t["text"] for t in await page.evaluate(TILES)]
            assert all(t.startswith("reconnecting since") for t in texts), texts

            await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
            hub = stack.enter_context(running_daemon(tmp, hub_config(port), env=env, name="hub"))
            assert await asyncio.to_thread(hub.wait_ready, 60) == hub_url
            back_at = time.monotonic()
            outage = back_at - stopped_at
            for unit in fields:
                await wait_for(
                    lambda u=unit: link(u).get("state") == "live",
                    timeout=BACK_WITHIN_S - (time.monotonic() - back_at),
                    what="field unit live again within 5 s of the hub's return",
                    interval=0.05,
                )
            live_again = time.monotonic() - back_at
            await frames_advance(page, UNITS, 30)
            print(f"outage {outage:.1f} s; both live {live_again:.1f} s after the hub's return")

        for unit in fields:
            _check_local_recording(unit, outage)
        kinds = sorted(r["type"] for r in hub_recordings)
        assert kinds == ["audio", "audio", "video", "video"], hub_recordings


def viewer_priorities(hub: Daemon) -> dict[str, str | None]:
    """Per field unit: the priority the page's viewer ("wall") gives its video at the hub."""
    out = {}
    for room in hub.status()["rooms"]:
        for p in room["participants"]:
            for track in p["tracks"]:
                for sub in track["subscribers"]:
                    if track["kind"] == "video" and sub["identity"] == "wall":
                        out[p["identity"]] = sub["priority"]
    return out


async def _all(page: Any, state: str) -> bool:
    states = page_states(await page.evaluate(TILES))
    return set(states) >= set(UNITS) and all(states[u] == state for u in UNITS)


def _check_local_recording(unit: Daemon, outage: float) -> None:
    key = unit.api_key()

    def finished() -> list[dict[str, Any]]:
        recs = unit.rest("/v1/Recordings?PageSize=50", key)["recordings"]
        done = [r for r in recs if r["type"] == "video" and r["status"] == "completed"]
        return done

    videos = wait_for_sync(finished, timeout=30, what="local video recording completed")
    longest = max(video_duration(unit.data_dir / "recordings" / f"{r['sid']}.mkv") for r in videos)
    assert longest >= outage - 2.0, (longest, outage, videos)
