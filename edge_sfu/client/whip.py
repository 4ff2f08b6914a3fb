"""A WHIP client (RFC 9725): publish tracks to any WHIP endpoint with one HTTP exchange.

``POST`` the SDP offer (``application/sdp``, ``Authorization: Bearer`` when a token is
given) to the endpoint; the ``201 Created`` answer carries the SDP answer and the session's
``Location``; ``DELETE`` on that resource ends the session. aiortc gathers every ICE
candidate before the offer exists, so the offer carries them all and nothing is trickled
(trickle is optional for a WHIP client, RFC 9725 section 4.3.1). Pre-encoded H.264
(``EncodedVideoTrack``) is sent as it is: the video m-line offers H.264 only, so aiortc
packetizes and never encodes; the bitrate the receiver allows (REMB) and its keyframe
requests reach the track as they do in the unit's own client.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from urllib.parse import urljoin

import aiohttp
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from ..media import seam
from .media import EncodedVideoTrack, _hint_track, rtc_configuration

log = logging.getLogger(__name__)

SDP = "application/sdp"
#: How long one HTTP exchange with the endpoint may take (seconds).
HTTP_TIMEOUT = 10.0


class WhipError(ConnectionError):
    """The endpoint refused the session or could not be reached."""


class WhipSession:
    """One published session: ``publish`` opens it, ``close`` ends it (idempotent).

    ``on_ended(reason)`` runs once if the media connection fails or closes by itself.
    """

    def __init__(
        self,
        url: str,
        token: str = "",
        *,
        ice_servers: list[dict[str, str]] | None = None,
        on_ended: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self._token = token
        self._ice_servers = ice_servers
        self._on_ended = on_ended
        self.pc: RTCPeerConnection | None = None
        #: The session resource (absolute URL) and its entity tag, once created.
        self.location = ""
        self.etag = ""
        self._closed = False

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    async def publish(self, tracks: list[MediaStreamTrack]) -> None:
        """Offer ``tracks`` (send only) and apply the endpoint's answer; raises ``WhipError``."""
        pc = RTCPeerConnection(rtc_configuration(self._ice_servers))
        self.pc = pc
        for track in tracks:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            if isinstance(track, EncodedVideoTrack):
                h264 = [
                    c
                    for c in RTCRtpSender.getCapabilities("video").codecs
                    if c.mimeType.lower() in ("video/h264", "video/rtx")
                ]
                transceiver.setCodecPreferences(h264)
                track.sender = transceiver.sender
                seam.watch_bitrate_hints(
                    transceiver.sender, functools.partial(_hint_track, transceiver.sender)
                )

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState in ("failed", "closed") and not self._closed:
                self._ended(f"media connection {pc.connectionState}")

        await pc.setLocalDescription(await pc.createOffer())
        answer = await self._post(str(pc.localDescription.sdp))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def _post(self, offer: str) -> str:
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.post(self.url, data=offer, headers=self._headers(SDP)) as response,
            ):
                body = await response.text()
                if response.status != 201:
                    raise WhipError(
                        f"WHIP endpoint refused the offer ({response.status}): {body[:200]}"
                    )
                location = response.headers.get("Location")
                if not location:
                    raise WhipError("WHIP endpoint answered without a Location")
                self.location = urljoin(str(response.url), location)
                self.etag = response.headers.get("ETag", "")
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WhipError(f"WHIP endpoint unreachable: {exc or type(exc).__name__}") from exc

    def _ended(self, reason: str) -> None:
        if self._on_ended is not None:
            callback, self._on_ended = self._on_ended, None
            callback(reason)

    async def close(self) -> None:
        """DELETE the session resource (best effort) and close the peer connection."""
        if self._closed:
            return
        self._closed = True
        self._on_ended = None  # ended by us: nobody needs telling
        if self.location:
            timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT)
            try:
                async with (
                    aiohttp.ClientSession(timeout=timeout) as http,
                    http.delete(self.location, headers=self._headers()) as response,
                ):
                    if response.status >= 300:
                        log.info("WHIP DELETE answered %d", response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("WHIP DELETE failed: %s", exc)
        if self.pc is not None:
            await self.pc.close()


async def wait_connected(session: WhipSession, within: float) -> None:
    """Wait until the media connection is up; raises ``WhipError`` when it fails first or
    is not up ``within`` seconds."""
    pc = session.pc
    assert pc is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed") or loop.time() > deadline:
            raise WhipError(f"WHIP media connection {pc.connectionState}")
        await asyncio.sleep(0.05)
