"""The kiosk end to end: a press joins the room; a browser sees, hears and is heard.

The daemon runs as a real process on simulated hardware: the synthetic camera through
libx264, ALSA file PCMs (a 440 Hz tone in, the speaker into a file), gpiozero's MockFactory.
The browser is Debian's Chromium with a fake camera and a 660 Hz fake microphone.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import INBOUND_JS, chromium, open_page, require_chromium
from tests.support.daemon import Daemon, running_daemon
from tests.support.waiting import wait_for

from .audio_files import (
    alsa_env,
    dominant_frequency,
    kiosk_config,
    loud_tail,
    write_raw_tone,
    write_wav_tone,
)

pytestmark = pytest.mark.browser

KIOSK_TONE = 440.0
BROWSER_TONE = 660.0
LAYERS = [
    {"name": "high", "width": 640, "height": 360, "bitrate": 800_000},
    {"name": "low", "width": 160, "height": 90, "bitrate": 120_000},
]

CONNECT_JS = """
async (token) => {
  const m = await import('/static/edge-video.js');
  const room = await m.connect(token, { name: 'meeting-room', audio: true, video: true });
  window.edgeRoom = room;
  // Audio is only decoded (and its energy measured) when it plays somewhere. Video is not
  // attached: this page renders nothing, so it never states a render size by itself.
  room.on('trackSubscribed', (track) => {
    if (track.kind === 'audio') document.body.append(track.attach());
  });
  return room.localParticipant.sid;
}
"""

KIOSK_PUBS_JS = """
() => {
  const out = {};
  for (const p of window.edgeRoom.participants.values()) {
    if (p.identity !== 'kiosk') continue;
    for (const pub of p.tracks.values()) out[pub.kind] = pub.isTrackEnabled;
  }
  return out;
}
"""

RENDER_JS = """
([w, h]) => {
  for (const p of window.edgeRoom.participants.values()) {
    if (p.identity !== 'kiosk') continue;
    for (const pub of p.tracks.values()) if (pub.kind === 'video' && pub.track) {
      pub.track.setRenderSize(w, h); return true;
    }
  }
  return false;
}
"""


def layers(daemon: Daemon) -> dict[str, dict[str, Any]]:
    return daemon.status()["media"]["camera_layers"]


def kiosk_inbound(stats: list[dict[str, Any]] | None, kind: str) -> dict[str, Any] | None:
    for entry in stats or []:
        if entry["identity"] == "kiosk" and entry["kind"] == kind:
            return entry
    return None


@pytest.fixture
def media_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "tone": tmp_path / "kiosk-mic.raw",
        "speaker": tmp_path / "kiosk-speaker.raw",
        "browser_mic": tmp_path / "browser-mic.wav",
    }
    write_raw_tone(files["tone"], KIOSK_TONE, 240)
    write_wav_tone(files["browser_mic"], BROWSER_TONE, 10)
    return files


async def test_press_join_media_both_ways_mute_adaptive_layers_and_leave(tmp_path, media_files):
    require_chromium()
    config = kiosk_config(LAYERS, media_files["tone"], media_files["speaker"])
    with running_daemon(tmp_path, config, env=alsa_env(tmp_path)) as daemon:
        url = await asyncio.to_thread(daemon.wait_ready, 60)
        assert daemon.status()["degraded"] == {}, daemon.status()["degraded"]

        # Alone in the room, the kiosk encodes nothing.
        assert daemon.cli("press", "join").returncode == 0
        await wait_for(
            lambda: daemon.status()["state"] == "in_call", timeout=30, what="kiosk in call"
        )
        await asyncio.sleep(2)
        alone = layers(daemon)
        assert alone["high"]["frames"] == 0 and alone["low"]["frames"] == 0, alone

        token = daemon.cli(
            "token", "--identity", "browser", "--room", "meeting-room"
        ).stdout.strip()
        async with chromium(
            f"--use-file-for-fake-audio-capture={media_files['browser_mic']}"
        ) as browser:
            page = await open_page(browser, f"{url}/join/meeting-room")
            await page.evaluate(CONNECT_JS, token)

            async def inbound() -> Any:
                return await page.evaluate(INBOUND_JS)

            # The browser has not said how large it renders the kiosk: the best layer only.
            got = await wait_for(
                inbound,
                lambda s: (kiosk_inbound(s, "video") or {}).get("framesDecoded", 0) > 10,
                60,
            )
            video = kiosk_inbound(got, "video")
            assert video is not None and video["framesDecoded"] > 10, got
            assert (video["frameWidth"], video["frameHeight"]) == (640, 360), video
            best = layers(daemon)
            assert best["high"]["encoding"] and best["high"]["frames"] > 10, best
            assert not best["low"]["encoding"] and best["low"]["frames"] == 0, best

            # A small tile: the small layer only, and the large encoder stops.
            assert await page.evaluate(RENDER_JS, [160, 90])
            got = await wait_for(
                inbound,
                lambda s: (kiosk_inbound(s, "video") or {}).get("frameWidth") == 160,
                60,
            )
            video = kiosk_inbound(got, "video")
            assert video is not None and (video["frameWidth"], video["frameHeight"]) == (
                160,
                90,
            ), got
            small = layers(daemon)
            assert small["low"]["encoding"] and small["low"]["frames"] > 0, small
            assert not small["high"]["encoding"], small

            # Asking for a large picture starts the large layer, at the configured size.
            assert await page.evaluate(RENDER_JS, [640, 360])
            got = await wait_for(
                inbound,
                lambda s: (kiosk_inbound(s, "video") or {}).get("frameWidth") == 640,
                60,
            )
            video = kiosk_inbound(got, "video")
            assert video is not None and (video["frameWidth"], video["frameHeight"]) == (
                640,
                360,
            ), got
            big = layers(daemon)
            assert big["high"]["encoding"] and big["high"]["frames"] > 0, big
            before = video["framesDecoded"]
            got = await wait_for(
                inbound,
                lambda s: (kiosk_inbound(s, "video") or {}).get("framesDecoded", 0) > before + 10,
                30,
            )
            assert kiosk_inbound(got, "video")["framesDecoded"] > before + 10

            # The kiosk's microphone tone reaches the browser with energy.
            got = await wait_for(
                inbound,
                lambda s: (kiosk_inbound(s, "audio") or {}).get("totalAudioEnergy", 0) > 0.01,
                60,
            )
            audio = kiosk_inbound(got, "audio")
            assert audio is not None and audio["totalAudioEnergy"] > 0.01, json.dumps(got)

            # The browser's microphone reaches the kiosk's speaker file at 660 Hz.
            speaker = media_files["speaker"]
            await wait_for(
                lambda: speaker.exists() and speaker.stat().st_size > 48_000 * 2 * 4,
                timeout=60,
                what="speaker output",
            )
            await asyncio.sleep(2)
            freq, rms = dominant_frequency(loud_tail(speaker, 1.0))
            assert abs(freq - BROWSER_TONE) < 15, (freq, rms, daemon.status()["media"])
            assert rms > 300, rms

            # Mute: the browser sees the kiosk's audio track disabled; unmute restores it.
            assert daemon.cli("press", "mute").returncode == 0
            pubs = await wait_for(
                lambda: page.evaluate(KIOSK_PUBS_JS), lambda p: p.get("audio") is False, 20
            )
            assert pubs.get("audio") is False and pubs.get("video") is True, pubs
            assert daemon.cli("press", "mute").returncode == 0
            pubs = await wait_for(
                lambda: page.evaluate(KIOSK_PUBS_JS), lambda p: p.get("audio") is True, 20
            )
            assert pubs.get("audio") is True, pubs

            # Leave: the kiosk is gone from the browser's room, and encodes nothing.
            assert daemon.cli("press", "join").returncode == 0
            ids = await wait_for(
                lambda: page.evaluate(
                    "() => [...window.edgeRoom.participants.values()].map(p => p.identity)"
                ),
                lambda ids: "kiosk" not in ids,
                20,
            )
            assert "kiosk" not in ids, ids
            await wait_for(
                lambda: daemon.status()["state"] == "idle", timeout=20, what="kiosk idle"
            )
            after = layers(daemon)
            assert not after["high"]["encoding"] and not after["low"]["encoding"], after
            print(json.dumps(daemon.status()["media"]))
