"""The adaptation issue's room: two pages on this host and one participant behind a capped
link.

alice and bob join on this host and carol from a network namespace whose link ``tbf`` caps
each way; every camera is a sharp one (``qoe.real_camera_flag``). After a settle, what each
page decodes of each remote camera over a window, from Chromium's ``getStats()``. Then carol's
cap is lifted and, after another settle, what alice and bob decode of each other over a
second window is the baseline: the frame rate they get with no capped participant in the
room. The baseline keeps all three participants (and so all three cameras) running: on a
small host a third page encoding a camera takes frames from every camera before they
reach the encoder (25 against 30 a second on two cores, with no loss anywhere), and against
a room of two the bar measured the host, not the unit. Each of the issue's bars with whether
it held. The browser test asserts the bars; ``benchmarks/adaptation.py`` reports them.

alice and bob are two pages of one Chromium on this host, each in its own context (as two
people's profiles: their own renderer, peer connection, camera and microphone), and carol's
is a second Chromium inside the namespace. A third browser adds its own browser, GPU,
network and audio processes to a host the three cameras' encoders already fill: on two
cores, with alice and bob in browsers of their own, every page froze 2-9 s in a 30 s window
at no loss, carol's pictures as much as the fast pages' (in one browser: 0-0.7 s), and the
freeze bar measured the host, not the unit.

carol is a join page, or the Python client (``carol="python"``): it publishes a 640x480
testsrc2 camera in VP8 and decodes what it subscribes to, and reports the same figures as a
page's ``inbound-rtp`` (frames decoded, freezes as Chromium counts them, size, packets).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge_sfu.media import MediaSettings
from tests.support.browser import CHROMIUM, chromium, joined_page
from tests.support.netns import SlowHost
from tests.support.qoe import (
    FRAME_RATE_FLOOR_FLAG,
    INBOUND_VIDEO_JS,
    OUTBOUND_VIDEO_JS,
    Seen,
    compare,
    real_camera_flag,
    report,
    watch,
)
from tests.support.sfu import RunningSfu, describe_downlinks, downlinks_now, running_sfu

#: The Python client's niceness as carol: it receives, decodes and times two cameras on one
#: Python thread, on a host whose two cores also run two browsers' encoders (and in CI
#: whatever else the machine does). At the default niceness a host with a core's worth of
#: other load starved it into 33-38 stalls of a quarter second each in the 30 s window, at
#: no loss, while the pages' views of each other froze 0.5-0.8 s in all: the freeze bar
#: measured carol's host, not the unit. Chromium itself runs its browser and GPU processes
#: at -8; so the client standing in for carol's own device runs before the batch work
#: beside it. Under that same load it then met every bar once, and once froze 4.9-5.4 s
#: in 21-22 stalls: fewer, not none; with less load beside it (a CI host's) it holds.
CAROL_NICE = -5
CAP_KBIT = 400
SETTLE_S = 15.0
WINDOW_S = 30.0


@dataclass(frozen=True)
class ThreePages:
    """What the pages saw with carol's link capped, then what alice and bob saw of each other
    with it uncapped (the baseline); and the bars."""

    seen: dict[str, dict[str, Seen]]
    uncapped: dict[str, dict[str, Seen]]
    bars: dict[str, bool]
    #: The SFU's view of every downlink at the end of each window (``describe_downlinks``).
    downlinks: tuple[str, str] = ("", "")
    #: ... and every second from the SFU's start (``downlinks_now``), with the windows and
    #: the cap's lift marked.
    trace: tuple[str, ...] = ()
    #: alice's and bob's top layer as each sent it at the end of the capped window
    #: (``Top``): the full layer the other one should see.
    tops: dict[str, Top] = field(default_factory=dict)
    #: The rate alice's and bob's browsers encoded their top layer at in each window
    #: (capped, uncapped): what the other one could decode at most.
    encoded: tuple[dict[str, float], dict[str, float]] = ({}, {})

    def __str__(self) -> str:
        failed = [bar for bar, held in self.bars.items() if not held]
        trace = "\n".join(self.trace)
        tops = ", ".join(f"{name} {top}" for name, top in self.tops.items())
        capped, uncapped = (
            ", ".join(f"{name} {fps:.1f} fps" for name, fps in rates.items())
            for rates in self.encoded
        )
        return (
            f"top layers sent: {tops}\n"
            f"carol capped:\n{report(self.seen)}\n"
            f"  top layers encoded at: {capped}\n{self.downlinks[0]}\n"
            f"carol uncapped:\n{report(self.uncapped)}\n"
            f"  top layers encoded at: {uncapped}\n{self.downlinks[1]}\n"
            f"every second:\n{trace}\nbars not met: {failed or 'none'}"
        )


@dataclass(frozen=True)
class Top:
    """A page's top active camera encoding as its sender reports it (``OUTBOUND_VIDEO_JS``),
    and what limits it (Chromium's ``qualityLimitationReason``)."""

    width: int
    height: int
    limited_by: str

    def __str__(self) -> str:
        return f"{self.width}x{self.height} (limited by {self.limited_by or 'none'})"


async def _top(page: Any) -> Top:
    encodings = [
        e for e in await page.evaluate(OUTBOUND_VIDEO_JS) or [] if e["active"] and e["frameWidth"]
    ]
    if not encodings:
        return Top(0, 0, "")
    top = max(encodings, key=lambda e: e["frameWidth"])
    return Top(top["frameWidth"], top["frameHeight"], top["qualityLimitationReason"])


def _bars(
    seen: dict[str, dict[str, Seen]],
    uncapped: dict[str, dict[str, Seen]],
    tops: dict[str, Top],
    encoded: tuple[dict[str, float], dict[str, float]],
) -> dict[str, bool]:
    return {
        "carol decodes each camera at 12 fps or more": all(
            seen["carol"][r].fps >= 12 for r in ("alice", "bob")
        ),
        "carol's cameras frozen 2 s or less each": all(
            seen["carol"][r].frozen_s <= 2 for r in ("alice", "bob")
        ),
        "carol gets a smaller size": all(
            0 < seen["carol"][r].width < tops[r].width for r in ("alice", "bob")
        ),
        "alice and bob decode carol at 12 fps or more": all(
            seen[v]["carol"].fps >= 12 for v in ("alice", "bob")
        ),
        "alice and bob see each other's full layer at 90 % of their share uncapped": all(
            seen[v][r].width == tops[r].width
            and _share(seen[v][r], encoded[0][r]) >= 0.9 * _share(uncapped[v][r], encoded[1][r])
            for v, r in (("alice", "bob"), ("bob", "alice"))
        ),
    }


def _share(seen: Seen, encoded_fps: float) -> float:
    """The share of a sender's top-layer frames that a viewer decoded (at most 1: the two
    rates are read a few milliseconds apart)."""
    return min(1.0, seen.fps / encoded_fps) if encoded_fps > 0 else 0.0


async def _encoded(page: Any) -> dict[str, tuple[int, int]]:
    """Per encoding (by RID) of a page's camera, its frames encoded so far and its width."""
    return {
        e["rid"]: (e["framesEncoded"], e["frameWidth"] if e["active"] else 0)
        for e in await page.evaluate(OUTBOUND_VIDEO_JS) or []
    }


async def _watch(
    pages: dict[str, Any], senders: dict[str, Any]
) -> tuple[dict[str, dict[str, Seen]], dict[str, float]]:
    """``watch`` over ``WINDOW_S``, and the rate each of ``senders`` encoded its top layer at
    meanwhile (its widest active encoding at the end)."""
    before = {name: await _encoded(page) for name, page in senders.items()}
    start = time.monotonic()
    seen = await watch(pages, WINDOW_S)
    elapsed = time.monotonic() - start
    rates: dict[str, float] = {}
    for name, page in senders.items():
        after = await _encoded(page)
        rid = max(after, key=lambda r: after[r][1], default=None)
        if rid is not None and rid in before[name]:
            rates[name] = (after[rid][0] - before[name][rid][0]) / elapsed
    return seen, rates


#: carol as the Python client, run inside the namespace: every half second it prints one JSON
#: line, the monotonic time and, per remote identity, its cumulative view in the keys of
#: ``qoe.INBOUND_VIDEO_JS``. A freeze is counted as Chromium counts one: a frame that comes
#: at least max(3, 1 + 150 ms / average) times the average of the last 30 frame intervals
#: after the one before; the whole interval is frozen time.
PYTHON_CAROL = """
import asyncio, json, sys, time
from edge_sfu.client import connect
from tests.integration.media.peers import SyntheticVideoTrack

views, receivers = {}, {}

async def read(identity, track):
    view = views[identity] = {"framesDecoded": 0, "freezeCount": 0,
        "totalFreezesDuration": 0.0, "frameWidth": 0, "frameHeight": 0,
        "packetsLost": 0, "packetsReceived": 0}
    last, gaps = None, []
    while True:
        frame = await track.recv()
        now = time.monotonic()
        if last is not None:
            gap = now - last
            if len(gaps) >= 5:
                average = sum(gaps) / len(gaps)
                if gap >= max(3 * average, average + 0.150):
                    view["freezeCount"] += 1
                    view["totalFreezesDuration"] += gap
            gaps = (gaps + [gap])[-30:]
        last = now
        view["framesDecoded"] += 1
        view["frameWidth"], view["frameHeight"] = frame.width, frame.height

async def main():
    room = await connect(sys.argv[1], sys.argv[2], reconnect=False)
    def subscribed(track, pub, who):
        if track.kind == "video":
            receivers[who.identity] = track
            asyncio.ensure_future(read(who.identity, track))
    room.on("track_subscribed", subscribed)
    await room.publish_track(SyntheticVideoTrack(640, 480, 30), "camera", codec="VP8")
    while True:
        for receiver in room.media.pc.getReceivers():
            for identity, track in receivers.items():
                if receiver.track is track and identity in views:
                    for s in (await receiver.getStats()).values():
                        if s.type == "inbound-rtp":
                            views[identity]["packetsReceived"] = s.packetsReceived
                            views[identity]["packetsLost"] = s.packetsLost
        print(json.dumps({"t": time.monotonic(), "views": views}), flush=True)
        await asyncio.sleep(0.5)

asyncio.run(main())
"""


class _PythonViews:
    """The views the Python client prints, as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        self._stdout = process.stdout
        self.lines: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while line := await self._stdout.readline():
            self.lines.append(json.loads(line))

    def at(self, moment: float) -> dict[str, Any]:
        """The views printed nearest to ``moment`` (monotonic)."""
        assert self.lines, "the Python client printed nothing"
        return min(self.lines, key=lambda line: abs(line["t"] - moment))["views"]  # type: ignore[no-any-return]


async def three_page_room(
    data_dir: Path, host: SlowHost, scripts: Path, carol: Literal["page", "python"] = "page"
) -> ThreePages:
    """Run the room with carol (a page or the Python client) behind ``host`` capped at
    ``CAP_KBIT`` each way, then with the cap lifted (it is lifted at the end in any case)."""
    camera = real_camera_flag(scripts)
    downlinks: list[str] = []  # the SFU's view at the end of each window
    trace = _Trace()
    media = MediaSettings(host_addresses=(host.gateway,))
    host.set_rate(CAP_KBIT)
    try:
        async with running_sfu(data_dir, host=host.gateway, media=media) as sfu:
            secure = f"--unsafely-treat-insecure-origin-as-secure={sfu.base}"
            async with (
                trace.following(sfu),
                chromium(secure, camera, FRAME_RATE_FLOOR_FLAG) as here,
            ):
                alice = await joined_page(here, sfu.base, sfu.token("alice"))
                bob = await joined_page(here, sfu.base, sfu.token("bob"))
                fast = {"alice": alice, "bob": bob}
                if carol == "page":
                    inside = host.executable(CHROMIUM, scripts)
                    async with chromium(
                        secure, camera, FRAME_RATE_FLOOR_FLAG, executable=inside
                    ) as slow:
                        page = await joined_page(slow, sfu.base, sfu.token("carol"))
                        trace.watched["carol"] = page
                        await asyncio.sleep(SETTLE_S)
                        trace.mark("capped window")
                        seen, encoded = await _watch({**fast, "carol": page}, fast)
                        tops = {name: await _top(p) for name, p in fast.items()}
                        downlinks.append(describe_downlinks(sfu))
                        uncapped, encoded_uncapped = await _uncapped(host, fast, trace)
                        downlinks.append(describe_downlinks(sfu))
                else:
                    seen, uncapped, tops, (encoded, encoded_uncapped) = await _with_python_carol(
                        host, sfu, fast, downlinks, trace
                    )
    finally:
        host.set_rate(None)
    return ThreePages(
        seen,
        uncapped,
        _bars(seen, uncapped, tops, (encoded, encoded_uncapped)),
        (downlinks[0], downlinks[1]),
        tuple(trace.lines),
        tops,
        (encoded, encoded_uncapped),
    )


class _Trace:
    """Every participant's downlink every second (``downlinks_now``), and marks; and, once
    ``watched`` holds carol's page, what she has decoded of each camera so far (frames and
    seconds frozen), so that a freeze can be set beside what the SFU did then."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._start = time.monotonic()
        self.watched: dict[str, Any] = {}

    def mark(self, what: str) -> None:
        self.lines.append(f"{time.monotonic() - self._start:6.1f} --- {what}")

    @contextlib.asynccontextmanager
    async def following(self, sfu: RunningSfu) -> AsyncIterator[None]:
        """Sample every second while inside."""

        async def follow() -> None:
            while True:
                await asyncio.sleep(1.0)
                line = f"{time.monotonic() - self._start:6.1f} {downlinks_now(sfu)}"
                for name, page in list(self.watched.items()):
                    try:
                        views = await page.evaluate(INBOUND_VIDEO_JS) or {}
                    except Exception:  # the page closed: the room is over
                        del self.watched[name]
                        continue
                    seen = " ".join(
                        f"{who}:{v['framesDecoded']}f/{v['totalFreezesDuration']:.1f}s"
                        for who, v in sorted(views.items())
                    )
                    line += f" || {name} decoded {seen}"
                self.lines.append(line)

        task = asyncio.create_task(follow())
        try:
            yield
        finally:
            task.cancel()


async def _uncapped(
    host: SlowHost, fast: dict[str, Any], trace: _Trace
) -> tuple[dict[str, dict[str, Seen]], dict[str, float]]:
    """Lift carol's cap and, after a settle, what the fast pages see of each other (and the
    rate each encoded its top layer at, ``_watch``)."""
    host.set_rate(None)
    trace.mark("cap lifted")
    await asyncio.sleep(SETTLE_S)
    trace.mark("uncapped window")
    return await _watch(fast, fast)


async def _with_python_carol(
    host: SlowHost, sfu: RunningSfu, fast: dict[str, Any], downlinks: list[str], trace: _Trace
) -> tuple[
    dict[str, dict[str, Seen]],
    dict[str, dict[str, Seen]],
    dict[str, Top],
    tuple[dict[str, float], dict[str, float]],
]:
    process = await host.python(PYTHON_CAROL, sfu.ws_url, sfu.token("carol"), nice=CAROL_NICE)
    views = _PythonViews(process)
    try:
        await asyncio.sleep(SETTLE_S)
        trace.mark("capped window")
        start = time.monotonic()
        seen, encoded = await _watch(fast, fast)
        end = time.monotonic()
        tops = {name: await _top(p) for name, p in fast.items()}
        downlinks.append(describe_downlinks(sfu))
        await asyncio.sleep(1.0)  # the client's next line
        uncapped, encoded_uncapped = await _uncapped(host, fast, trace)
        downlinks.append(describe_downlinks(sfu))
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        await views.task
    seen["carol"] = compare(views.at(start), views.at(end), end - start)
    return seen, uncapped, tops, (encoded, encoded_uncapped)
