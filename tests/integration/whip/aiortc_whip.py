"""A plain WHIP/WHEP client on aiortc's public API and aiohttp: not the project's own client.

It offers with every candidate gathered (aiortc does not trickle), as most encoders do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription


@dataclass
class WhipResult:
    """What the server answered to the POST."""

    status: int
    headers: Any
    body: str
    location: str | None


async def post_offer(
    base: str, path: str, token: str | None, sdp: str, content_type: str = "application/sdp"
) -> WhipResult:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + path, data=sdp.encode(), headers=headers) as response,
    ):
        body = await response.text()
        location = response.headers.get("Location")
        return WhipResult(
            response.status,
            response.headers,
            body,
            urljoin(base + path, location) if location else None,
        )


async def delete(url: str, token: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.delete(url, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        return response.status


class AiortcWhip:
    """One aiortc peer connection publishing (WHIP) or playing (WHEP) through HTTP."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.received: list[MediaStreamTrack] = []
        self.pc.on("track", self.received.append)
        self.location: str | None = None
        self.token = ""

    async def publish(
        self, base: str, room: str, token: str, *tracks: MediaStreamTrack
    ) -> WhipResult:
        for track in tracks:
            self.pc.addTransceiver(track, direction="sendonly")
        return await self._exchange(base, f"/whip/{room}", token)

    async def play(self, base: str, path: str, token: str, kinds: tuple[str, ...]) -> WhipResult:
        for kind in kinds:
            self.pc.addTransceiver(kind, direction="recvonly")
        return await self._exchange(base, path, token)

    async def _exchange(self, base: str, path: str, token: str) -> WhipResult:
        self.token = token
        await self.pc.setLocalDescription(await self.pc.createOffer())
        result = await post_offer(base, path, token, self.pc.localDescription.sdp)
        if result.status == 201:
            self.location = result.location
            await self.pc.setRemoteDescription(RTCSessionDescription(result.body, "answer"))
        return result

    async def delete(self) -> int:
        assert self.location is not None
        return await delete(self.location, self.token)

    async def close(self) -> None:
        await self.pc.close()
