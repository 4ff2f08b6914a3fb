"""Headless Chromium (Debian's, driven by Playwright) and in-process H.264 for media tests."""

from __future__ import annotations

import contextlib
import shutil
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest

from edge_sfu.media import H264, EncodedFrame
from tests.support.media import H264TestSource

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]

# Per remote participant, what a page receives: one entry per subscribed track, from the
# receiver's own getStats() (so the numbers belong to that track and nothing else).
INBOUND_JS = """
async () => {
  const room = window.edgeRoom;
  if (!room) return null;
  const out = [];
  for (const p of room.participants.values()) {
    for (const pub of p.tracks.values()) {
      if (!pub.track) continue;
      const receiver = room._pc.getReceivers().find((r) => r.track === pub.track.mediaStreamTrack);
      if (!receiver) continue;
      const stats = [...(await receiver.getStats()).values()].find((s) => s.type === 'inbound-rtp');
      out.push({identity: p.identity, kind: pub.kind, enabled: pub.isTrackEnabled,
        framesDecoded: stats ? stats.framesDecoded || 0 : 0,
        frameWidth: stats ? stats.frameWidth || 0 : 0,
        frameHeight: stats ? stats.frameHeight || 0 : 0,
        totalAudioEnergy: stats ? stats.totalAudioEnergy || 0 : 0,
        packetsReceived: stats ? stats.packetsReceived || 0 : 0});
    }
  }
  return out;
}
"""

# What a page sends of each of its video tracks: the largest of its encodings (simulcast
# layers are smaller copies of the same picture).
OUTBOUND_JS = """
async () => {
  const stats = await window.edgeRoom.getStats();
  const top = new Map();
  for (const s of stats) {
    if (s.type !== 'outbound-rtp' || s.kind !== 'video') continue;
    const key = s.mediaSourceId || s.id;
    const best = top.get(key);
    if (!best || (s.frameWidth || 0) > (best.frameWidth || 0)) top.set(key, s);
  }
  return [...top.values()].map((s) => (
    {frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0}));
}
"""


def require_chromium() -> None:
    """Skip (with the reason) where Debian's chromium is not installed."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")


#: Chromium's fake capture devices, three of each kind (for device choice and switching).
#: fake_device_1 delivers Y16 (depth) frames that no encoder takes: switch to fake_device_2.
THREE_FAKE_DEVICES = "--use-fake-device-for-media-stream=device-count=3"


@contextlib.asynccontextmanager
async def chromium(
    *extra_flags: str,
    executable: str = CHROMIUM,
    grant_media: bool = True,
    fake_devices: bool = True,
) -> AsyncIterator[Any]:
    """A Playwright-driven headless Chromium with FLAGS (and ``extra_flags``); never downloads.

    ``executable`` may be a wrapper that starts Debian's Chromium elsewhere, for example in a
    network namespace (``tests.support.netns.SlowHost.executable``).
    ``grant_media=False`` leaves out the flag that accepts every camera and microphone prompt:
    a context then has only the ``permissions`` it is given, and getUserMedia is refused
    (NotAllowedError) for the others. A ``--use-fake-device-for-media-stream=...`` flag in
    ``extra_flags`` replaces the plain one; ``fake_devices=False`` leaves fake devices out
    (headless, the browser then has no camera and no microphone at all).
    """
    from playwright.async_api import async_playwright

    flags = [f for f in FLAGS if grant_media or f != "--use-fake-ui-for-media-stream"]
    if not fake_devices or any(
        f.startswith("--use-fake-device-for-media-stream=") for f in extra_flags
    ):
        flags.remove("--use-fake-device-for-media-stream")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=[*flags, *extra_flags]
        )
        try:
            yield browser
        finally:
            await browser.close()


#: What each open page reported that a failing test should show: console errors, uncaught
#: exceptions, failed requests and error responses (a join page whose script never ran says
#: why here, where Playwright's own error only says the Join button never became visible).
_PAGE_TROUBLE: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()


def _watch(page: Any) -> list[str]:
    started = time.monotonic()
    log: list[str] = []

    def note(what: str) -> None:
        if len(log) < 40:  # bounded: a page in a loop of errors must not fill the message
            log.append(f"{time.monotonic() - started:6.1f}s {what}")

    def console(msg: Any) -> None:
        if msg.type in ("error", "warning"):
            note(f"console.{msg.type}: {msg.text}")

    def response(resp: Any) -> None:
        if resp.status >= 400:
            note(f"HTTP {resp.status} {resp.url}")

    page.on("console", console)
    page.on("pageerror", lambda err: note(f"uncaught: {err}"))
    page.on("requestfailed", lambda req: note(f"failed: {req.url} {req.failure}"))
    page.on("response", response)
    _PAGE_TROUBLE[page] = log
    return log


def page_trouble(page: Any) -> str:
    """What ``page`` (opened with :func:`open_page`) reported going wrong, one line each."""
    return "\n".join(_PAGE_TROUBLE.get(page, [])) or "(nothing reported)"


async def open_page(browser: Any, url: str, **context_options: Any) -> Any:
    """A page at ``url`` in a new context of ``browser`` (``context_options`` as Playwright's)."""
    context = await browser.new_context(**context_options)
    page = await context.new_page()
    _watch(page)
    await page.goto(url)
    return page


CONNECTED = "() => document.body.dataset.state === 'connected'"
#: What a join page shows of itself, for a message when it did not get as far as expected.
PAGE_STATE_JS = """() => ({state: document.body.dataset.state || null,
  status: (document.getElementById('status') || {}).textContent || null,
  banner: (document.getElementById('banner') || {}).textContent || null,
  prejoinHidden: (document.getElementById('prejoin') || {}).hidden,
  readyState: document.readyState,
  scripts: performance.getEntriesByType('resource').map((r) =>
    `${r.name.split('/').pop()} ${Math.round(r.duration)}ms ${r.transferSize}B`)})"""


async def join_now(page: Any) -> None:
    """On the join page's set-up (before joining), press Join and wait until connected."""
    from playwright.async_api import Error as PlaywrightError

    try:
        await page.click("#join-button")
        await page.wait_for_function(CONNECTED, timeout=60_000)
    except PlaywrightError as err:
        try:
            state = await page.evaluate(PAGE_STATE_JS)
        except PlaywrightError as inner:
            state = f"(unreadable: {inner})"
        raise AssertionError(
            f"the join page did not connect: {str(err).splitlines()[0]}\n"
            f"page: {state}\nwhat it reported:\n{page_trouble(page)}"
        ) from err


async def joined_page(browser: Any, base: str, token: str, room: str = "room1") -> Any:
    """The join page of ``room`` signed in with ``token``, once it says it is connected."""
    # The page's CSP forbids eval; Playwright's probes need it (the page's own code does not).
    page = await open_page(browser, f"{base}/join/{room}?token={token}", bypass_csp=True)
    await join_now(page)
    return page


class LocalDecoder:
    """Decodes what an in-process consumer receives (VP8 or H.264) and keeps the sizes."""

    def __init__(self, codec_name: str) -> None:
        self.decoder = av.CodecContext.create(codec_name, "r")
        self.sizes: list[tuple[int, int]] = []

    def __call__(self, frame: EncodedFrame) -> None:
        try:
            for picture in self.decoder.decode(av.Packet(frame.data)):
                self.sizes.append((picture.width, picture.height))
        except av.error.InvalidDataError:
            pass  # before the first keyframe


__all__ = [
    "CONNECTED",
    "H264",
    "THREE_FAKE_DEVICES",
    "H264TestSource",
    "LocalDecoder",
    "chromium",
    "join_now",
    "joined_page",
    "open_page",
    "require_chromium",
]
