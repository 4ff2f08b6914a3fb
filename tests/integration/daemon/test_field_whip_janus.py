"""A field unit publishes over WHIP to an independent server: Janus's VideoRoom behind a WHIP
endpoint, and a Janus subscriber (an aiortc peer answering Janus's offer) decodes its video.

The field unit sends its camera's pre-encoded H.264 as it is (Janus's room takes H.264
only) with the Bearer token from its config; a wrong token is refused and the unit keeps
trying; when the unit stops it DELETEs its session.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.browser.kiosk.audio_files import alsa_env, kiosk_config, write_raw_tone
from tests.support.daemon import Daemon, running_daemon
from tests.support.waiting import wait_for
from tests.support.whip_janus import whip_in_front_of_janus

LAYERS = [{"name": "main", "width": 320, "height": 180, "bitrate": 300_000}]
TOKEN = "field-secret-1"

pytestmark = pytest.mark.skipif(shutil.which("janus") is None, reason="janus not installed")


def field_config(tmp: Path, whip_url: str, token: str) -> dict[str, Any]:
    tone = tmp / "mic.raw"
    write_raw_tone(tone, 440.0, 120)
    config: dict[str, Any] = kiosk_config(LAYERS, tone, tmp / "speaker.raw")
    config["unit"] = {"name": "field-whip", "role": "field"}
    config["field"] = {
        "transport": "whip",
        "whip_url": whip_url,
        "whip_token": token,
        "retry_initial": 0.5,
        "retry_max": 2.0,
    }
    config["recordings"] = {"min_free_mb": 64}
    return config


def link(unit: Daemon) -> dict[str, Any]:
    return dict(unit.status().get("link") or {})


async def test_field_unit_publishes_to_janus_over_whip(tmp_path: Path):
    async with whip_in_front_of_janus(TOKEN) as front:
        # A wrong token: refused, the unit keeps trying (and records locally meanwhile).
        with running_daemon(
            tmp_path, field_config(tmp_path, front.url, "wrong"), env=alsa_env(tmp_path), name="bad"
        ) as bad:
            await asyncio.to_thread(bad.wait_ready, 60)
            await wait_for(
                lambda: link(bad),
                lambda got: got.get("state") == "reconnecting" and got.get("attempt", 0) >= 2,
                timeout=30,
                what="a refused unit retrying",
            )
            assert "401" in link(bad)["reason"]
            assert front.refused >= 2 and not front.sessions
            await asyncio.to_thread(bad.stop)  # in a thread: the front answers on this loop

        config = field_config(tmp_path, front.url, TOKEN)
        with running_daemon(tmp_path, config, env=alsa_env(tmp_path), name="good") as unit:
            await asyncio.to_thread(unit.wait_ready, 60)
            await wait_for(
                lambda: link(unit).get("state"), lambda s: s == "live", timeout=60, what="live"
            )
            assert len(front.sessions) == 1
            assert unit.status()["status"].startswith(f"Live to {front.url}")
            sizes, frames = await receive_from_janus(front.room, 30)
            assert sizes == {(320, 180)}, sizes
            assert frames >= 30
            assert await asyncio.to_thread(unit.stop) == 0
        # stopping the unit ends its session with DELETE
        assert len(front.deleted) == 1 and not front.sessions


SIMULCAST = [
    {"name": "main", "width": 320, "height": 180, "bitrate": 300_000},
    {"name": "small", "width": 160, "height": 90, "bitrate": 80_000},
]


async def test_on_a_capped_uplink_the_field_unit_sends_its_small_layer(tmp_path: Path):
    """Janus's room lets a publisher send 150 kbit/s (its REMB says so): the unit switches
    to the layer that fits and stops encoding the large one."""
    async with whip_in_front_of_janus(TOKEN, bitrate=150_000) as front:
        config = field_config(tmp_path, front.url, TOKEN)
        config["camera"]["layers"] = SIMULCAST
        config["audio"] = {"enabled": False}
        with running_daemon(tmp_path, config, name="capped") as unit:
            await asyncio.to_thread(unit.wait_ready, 60)

            def encoding() -> dict[str, bool]:
                layers = unit.status()["media"].get("camera_layers", {})
                return {name: layer["encoding"] for name, layer in layers.items()}

            await wait_for(
                encoding,
                lambda got: got == {"main": False, "small": True},
                timeout=60,
                what="only the small layer encoded",
            )
            sizes, _ = await receive_from_janus(front.room, 15)
            assert sizes == {(160, 90)}, sizes
            await asyncio.to_thread(unit.stop)


async def receive_from_janus(room: Any, wanted: int) -> tuple[set[tuple[int, int]], int]:
    """Subscribe to the room's publisher through Janus's API; decode ``wanted`` frames."""
    handle, offer = await room.subscribe()
    pc = RTCPeerConnection()
    got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track: Any) -> None:
        if track.kind == "video" and not got.done():
            got.set_result(track)

    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await room.start(handle, pc.localDescription.sdp)
        track = await asyncio.wait_for(got, 20)
        sizes: set[tuple[int, int]] = set()
        for _ in range(wanted):
            frame = await asyncio.wait_for(track.recv(), 20)
            sizes.add((frame.width, frame.height))
        return sizes, wanted
    finally:
        await pc.close()
