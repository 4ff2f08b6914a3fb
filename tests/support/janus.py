"""Janus (Debian's ``janus``) as the reference SFU: private config, HTTP API on 127.0.0.1.

Only the VideoRoom plugin and the HTTP transport are loaded, no STUN server is set, and
ICE gathers on the host's interfaces as our SFU's aioice does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aiohttp

JANUS = shutil.which("janus") or "/usr/bin/janus"
LIBDIR = Path("/usr/lib/x86_64-linux-gnu/janus")
for _candidate in Path("/usr/lib").glob("*/janus"):
    if (_candidate / "plugins" / "libjanus_videoroom.so").exists():
        LIBDIR = _candidate
        break


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _disabled(folder: Path, keep: str) -> str:
    names = sorted(p.name for p in folder.glob("*.so") if p.name != keep)
    return ",".join(names)


def write_config(folder: Path, port: int) -> Path:
    plugins = LIBDIR / "plugins"
    transports = LIBDIR / "transports"
    (folder / "janus.jcfg").write_text(
        f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{plugins}"
    transports_folder = "{transports}"
    events_folder = "{LIBDIR / "events"}"
    loggers_folder = "{LIBDIR / "loggers"}"
    debug_level = 2
    session_timeout = 300
}}
media: {{
}}
nat: {{
    nice_debug = false
    ice_ignore_list = "vmnet"
}}
plugins: {{
    disable = "{_disabled(plugins, "libjanus_videoroom.so")}"
}}
transports: {{
    disable = "{_disabled(transports, "libjanus_http.so")}"
}}
loggers: {{
    disable = "{_disabled(LIBDIR / "loggers", "")}"
}}
events: {{
    broadcast = false
    disable = "{_disabled(LIBDIR / "events", "")}"
}}
"""
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    port = {port}
    ip = "127.0.0.1"
    https = false
}}
admin: {{
    admin_http = false
    admin_https = false
}}
"""
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")
    return folder / "janus.jcfg"


class Janus:
    """A running Janus and a small client for its HTTP API."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="janus-bench-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}/janus"
        self._http: aiohttp.ClientSession | None = None
        self._events: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._poll: asyncio.Task[None] | None = None
        self.session = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        config = write_config(self._dir, self.port)
        log = open(self._dir / "janus.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                JANUS,
                "-C",
                str(config),
                "-F",
                str(self._dir),
                "-o",
                "-N",
                "-L",
                str(self._dir / "janus.out"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=40))
        for _ in range(100):
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with self._http.get(self.url + "/info") as resp:
                    if resp.status == 200:
                        break
            if self.proc.poll() is not None:
                raise RuntimeError("janus exited: " + (self._dir / "janus.log").read_text()[-2000:])
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("janus did not start")
        created = await self._post(self.url, {"janus": "create"})
        self.session = created["data"]["id"]
        self._poll = asyncio.get_running_loop().create_task(self._long_poll())

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None
        body = {**body, "transaction": uuid.uuid4().hex}
        async with self._http.post(url, data=json.dumps(body)) as resp:
            data: dict[str, Any] = json.loads(await resp.text())
        if data.get("janus") == "error":
            raise RuntimeError(f"janus error: {data}")
        return data

    async def _long_poll(self) -> None:
        assert self._http is not None
        while True:
            try:
                async with self._http.get(f"{self.url}/{self.session}?maxev=10") as resp:
                    events = json.loads(await resp.text())
            except (TimeoutError, aiohttp.ClientError, json.JSONDecodeError):
                await asyncio.sleep(0.2)
                continue
            if isinstance(events, dict):
                events = [events]
            for event in events:
                sender = event.get("sender")
                if sender is not None and event.get("janus") == "event":
                    self._events.setdefault(sender, asyncio.Queue()).put_nowait(event)

    async def attach(self) -> int:
        data = await self._post(
            f"{self.url}/{self.session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"}
        )
        handle = int(data["data"]["id"])
        self._events.setdefault(handle, asyncio.Queue())
        return handle

    async def request(self, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (create room...)."""
        return await self._post(
            f"{self.url}/{self.session}/{handle}", {"janus": "message", "body": body}
        )

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """An asynchronous plugin request; returns the event that answers it."""
        msg: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            msg["jsep"] = jsep
        await self._post(f"{self.url}/{self.session}/{handle}", msg)
        return await asyncio.wait_for(self._events[handle].get(), 30)

    async def close(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
        if self._http is not None:
            await self._http.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)


class JanusRoom:
    """One VideoRoom with one H.264/Opus publisher, subscribers added one by one."""

    ROOM = 4242

    def __init__(self, janus: Janus, bitrate: int = 0, publishers: int = 1) -> None:
        """``bitrate``: the most a publisher may send (bit/s; Janus says it in REMB), 0: no cap;
        ``publishers``: how many may publish in the room at once."""
        self.janus = janus
        self.bitrate = bitrate
        self.feed = 0
        self.publishers = publishers
        self.feeds: list[int] = []  # of every publisher, in the order they joined

    async def create(self) -> None:
        handle = await self.janus.attach()
        await self.janus.request(
            handle,
            {
                "request": "create",
                "room": self.ROOM,
                "publishers": self.publishers,
                "videocodec": "h264",
                "h264_profile": "42e01f",
                "audiocodec": "opus",
                "bitrate": self.bitrate,
                "fir_freq": 0,
                "notify_joining": False,
            },
        )

    async def publish(self, offer: str) -> str:
        handle = await self.janus.attach()
        event = await self.janus.message(
            handle,
            {
                "request": "joinandconfigure",
                "room": self.ROOM,
                "ptype": "publisher",
                "audio": True,
                "video": True,
            },
            {"type": "offer", "sdp": offer, "trickle": False},
        )
        self.feed = int(event["plugindata"]["data"]["id"])
        self.feeds.append(self.feed)
        return str(event["jsep"]["sdp"])

    async def subscribe(self) -> tuple[int, str]:
        handle = await self.janus.attach()
        event = await self.janus.message(
            handle,
            {
                "request": "join",
                "room": self.ROOM,
                "ptype": "subscriber",
                "streams": [{"feed": self.feed}],
            },
        )
        return handle, str(event["jsep"]["sdp"])

    async def start(self, handle: int, answer: str) -> None:
        await self.janus.message(
            handle, {"request": "start"}, {"type": "answer", "sdp": answer, "trickle": False}
        )

    async def subscribe_feeds(self, feeds: list[int], big: int) -> tuple[int, str, list[Any]]:
        """One subscriber handle for every stream of ``feeds`` (multistream); returns the
        handle, Janus's offer, and the subscription's video streams as (mid, feed)."""
        handle = await self.janus.attach()
        event = await self.janus.message(
            handle,
            {
                "request": "join",
                "room": self.ROOM,
                "ptype": "subscriber",
                "streams": [{"feed": feed} for feed in feeds],
            },
        )
        streams = event["plugindata"]["data"].get("streams", [])
        video = [(s["mid"], s.get("feed_id")) for s in streams if s.get("type") == "video"]
        return handle, str(event["jsep"]["sdp"]), video

    async def choose_substreams(self, handle: int, video: list[Any], big: int) -> None:
        """Simulcast layer per video stream: the lowest (0), the top (2) for ``big``'s."""
        await self.janus.message(
            handle,
            {
                "request": "configure",
                "streams": [
                    {"mid": mid, "substream": 2 if feed == big else 0} for mid, feed in video
                ],
            },
        )
