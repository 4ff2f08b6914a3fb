"""The kiosk daemon, two twilio-video.js pages, the unit's own join page and the Python client
in one room: everyone decodes everyone's video and hears the audio; the kiosk's speaker plays
what the SDK pages send."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edge_sfu.client import connect
from tests.support.browser import INBOUND_JS, chromium, joined_page, require_chromium
from tests.support.daemon import Daemon, running_daemon
from tests.support.media import PatternVideoTrack, receive_frames
from tests.support.twilio_sdk import SDK, app_server, join_with, received, sdk_page
from tests.support.waiting import wait_for

from .audio_files import (
    alsa_env,
    dominant_frequency,
    kiosk_config,
    loud_tail,
    write_raw_tone,
    write_wav_tone,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

BROWSER_TONE = 660.0
LAYERS = [{"name": "high", "width": 640, "height": 360, "bitrate": 800_000}]
ROOM = "meeting-room"


def token(daemon: Daemon, identity: str) -> str:
    return daemon.cli("token", "--identity", identity, "--room", ROOM).stdout.strip()


async def test_kiosk_sdk_pages_join_page_and_python_client_in_one_room(tmp_path):
    require_chromium()
    if not SDK.exists():
        pytest.skip("twilio-video not installed (npm ci)")
    tone, speaker, mic = tmp_path / "mic.raw", tmp_path / "speaker.raw", tmp_path / "mic.wav"
    write_raw_tone(tone, 440.0, 240)
    write_wav_tone(mic, BROWSER_TONE, 10)
    config = kiosk_config(LAYERS, tone, speaker)
    with running_daemon(tmp_path, config, env=alsa_env(tmp_path)) as daemon:
        url = await asyncio.to_thread(daemon.wait_ready, 60)
        assert daemon.cli("press", "join").returncode == 0
        await wait_for(
            lambda: daemon.status()["state"] == "in_call", timeout=30, what="kiosk in call"
        )
        ws = url.replace("http", "ws", 1)
        async with (
            chromium(f"--use-file-for-fake-audio-capture={mic}") as browser,
            app_server() as origin,
        ):
            alice = await sdk_page(browser, origin, [])
            bob = await sdk_page(browser, origin, [])
            await join_with(alice, f"{ws}/twilio/signaling", token(daemon, "alice"))
            await join_with(bob, f"{ws}/twilio/signaling", token(daemon, "bob"))

            # only the SDK pages send audio so far: the kiosk's speaker plays their tone
            await wait_for(
                lambda: speaker.exists() and speaker.stat().st_size > 48_000 * 2 * 4,
                timeout=60,
                what="speaker output",
            )
            await asyncio.sleep(2)
            freq, rms = dominant_frequency(loud_tail(speaker, 1.0))
            assert abs(freq - BROWSER_TONE) < 15 and rms > 300, (freq, rms)

            ann = await joined_page(browser, url, token(daemon, "ann"), room=ROOM)
            py = await connect(f"{ws}/v1/signaling", token(daemon, "py"))
            try:
                await py.publish_track(PatternVideoTrack(320, 240), "camera")
                for name, page in (("alice", alice), ("bob", bob)):
                    await wait_for(
                        lambda page=page: received(page),
                        lambda r, name=name: all(r.get(k, 0) > 0 for k in _wanted(name)),
                        90,
                        what=f"{name} receiving",
                    )
                # the join page decodes the kiosk, both SDK pages and the Python client
                seen = await wait_for(
                    lambda: ann.evaluate(INBOUND_JS),
                    lambda e: _decoded_from(e) >= {"kiosk", "alice", "bob", "py"},
                    90,
                )
                assert _decoded_from(seen) >= {"kiosk", "alice", "bob", "py"}, seen

                async def videos() -> dict[str, Any]:
                    return {
                        who.identity: pub.track
                        for who in py.participants.values()
                        if who.identity in ("alice", "bob", "kiosk")
                        for pub in who.tracks.values()
                        if pub.track is not None and pub.kind == "video"
                    }

                tracks = await wait_for(videos, lambda v: len(v) == 3, 60)
                got = await asyncio.gather(
                    *(receive_frames(t, 5, timeout=60) for t in tracks.values()),
                    return_exceptions=True,
                )
                failed = [
                    who for who, r in zip(tracks, got, strict=True) if not isinstance(r, list)
                ]
                assert failed == [], got
            finally:
                await py.disconnect()


def _wanted(me: str) -> list[str]:
    """Video and audio from every other participant (the Python client sends no audio)."""
    return [
        f"{who}/{kind}"
        for who in ("kiosk", "ann", "alice", "bob", "py")
        for kind in ("video", "audio")
        if who != me and (who, kind) != ("py", "audio")
    ]


def _decoded_from(entries: list[dict[str, Any]] | None) -> set[str]:
    return {e["identity"] for e in entries or [] if e["kind"] == "video" and e["framesDecoded"]}
