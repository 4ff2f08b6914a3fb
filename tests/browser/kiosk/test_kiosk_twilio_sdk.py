"""The kiosk daemon, two twilio-video.js pages, the unit's own join page and the Python client
in one room: everyone decodes everyone's video and receives everyone's audio (checked per
identity at each receiver); the kiosk's speaker plays what the SDK pages send."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import numpy as np
import pytest

from edge_sfu.client import connect
from tests.support.browser import INBOUND_JS, chromium, joined_page, require_chromium
from tests.support.daemon import Daemon, running_daemon
from tests.support.media import PatternVideoTrack, ToneAudioTrack, receive_frames
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
                await py.publish_track(ToneAudioTrack(), "microphone")
                for name, page in (("alice", alice), ("bob", bob)):
                    await wait_for(
                        lambda page=page: received(page),
                        lambda r, name=name: all(r.get(k, 0) > 0 for k in _wanted(name)),
                        90,
                        what=f"{name} receiving",
                    )
                # the join page decodes the video of the kiosk, both SDK pages and the Python
                # client, and receives the audio of each of them
                others = {"kiosk", "alice", "bob", "py"}
                seen = await wait_for(
                    lambda: ann.evaluate(INBOUND_JS),
                    lambda e: _decoded_from(e) >= others and _heard_from(e) >= others,
                    90,
                    what="the join page receiving",
                )
                assert _decoded_from(seen) >= others, seen
                assert _heard_from(seen) >= others, seen

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

                # the Python client receives audio from each of the others
                async def audio() -> dict[str, Any]:
                    return {
                        who.identity: pub.track
                        for who in py.participants.values()
                        for pub in who.tracks.values()
                        if pub.track is not None and pub.kind == "audio"
                    }

                heard = await wait_for(
                    audio, lambda a: set(a) >= {"alice", "bob", "ann", "kiosk"}, 60
                )
                got_audio = await asyncio.gather(*(_audio_for(t, 5.0) for t in heard.values()))
                summary = dict(zip(heard, got_audio, strict=True))
                # from each: at least 2.5 s of 20 ms frames in 5 s, with the sender's tone in them
                assert all(n >= 125 and rms > 300 for n, rms in got_audio), summary
            finally:
                await py.disconnect()


def _wanted(me: str) -> list[str]:
    """Video and audio from every other participant."""
    return [
        f"{who}/{kind}"
        for who in ("kiosk", "ann", "alice", "bob", "py")
        for kind in ("video", "audio")
        if who != me
    ]


def _decoded_from(entries: list[dict[str, Any]] | None) -> set[str]:
    return {e["identity"] for e in entries or [] if e["kind"] == "video" and e["framesDecoded"]}


def _heard_from(entries: list[dict[str, Any]] | None) -> set[str]:
    return {e["identity"] for e in entries or [] if e["kind"] == "audio" and e["totalAudioEnergy"]}


async def _audio_for(track: Any, seconds: float) -> tuple[int, float]:
    """How many frames of a received audio track arrive in ``seconds``, and the highest
    RMS level among them."""
    frames: list[Any] = []

    async def pull() -> None:
        while True:
            frames.append(await track.recv())

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(pull(), seconds)
    levels = [float(np.sqrt(np.mean(f.to_ndarray().astype(np.float64) ** 2))) for f in frames]
    return len(frames), max(levels, default=0.0)
