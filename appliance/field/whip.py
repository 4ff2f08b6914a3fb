"""A field unit's call over WHIP (RFC 9725) to any WHIP server.

The same call as the kiosk's to another unit (``RemoteCall``): the camera's pre-encoded H.264
goes out as it is, one layer at a time, chosen by the receiver's bitrate hints
(``appliance.kiosk.uplink``), and the microphone as Opus. Only the way in differs: one WHIP
``POST`` instead of the unit's signaling, and ``DELETE`` to leave. There is no room to hear,
so nothing is played.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiortc import MediaStreamTrack

from edge_sfu.client.media import EncodedVideoTrack
from edge_sfu.client.whip import WhipSession, wait_connected

from ..kiosk.call import PcmTrack, RemoteCall
from ..kiosk.devices import DeviceUse
from ..kiosk.mixer import AudioMixer
from ..kiosk.uplink import UplinkLayerChoice

log = logging.getLogger(__name__)

#: How long the media connection may take to come up after the answer (seconds).
CONNECT_TIMEOUT = 15.0
#: Sessions being DELETEd after their media failed (kept referenced until done).
_ENDING: set[asyncio.Task[None]] = set()


class WhipCall(RemoteCall):
    """The field unit publishing to a WHIP endpoint (see the module docstring)."""

    def __init__(
        self, devices: DeviceUse, mixer: AudioMixer, on_ended: Callable[[str, int | None], None]
    ) -> None:
        super().__init__(devices, mixer, on_ended)
        self._session: WhipSession | None = None

    async def join_whip(self, url: str, token: str) -> None:
        """Publish the camera and microphone; raises ``WhipError`` when refused or unreachable."""
        session = WhipSession(url, token, on_ended=lambda reason: self._ended(reason, None))
        self._session = session
        tracks: list[MediaStreamTrack] = []
        camera = self._devices.camera
        if camera is not None:
            self._uplink = UplinkLayerChoice(camera.spec.layers, camera.spec.framerate)
            self._layer = self._uplink.layer
            self._video = EncodedVideoTrack()
            self._video.on_keyframe_request = lambda: self._devices.request_keyframe(self._layer)
            self._video.on_bitrate_hint = self._bitrate_hint
            tracks.append(self._video)
        if self._devices.capture is not None:
            self._mic = PcmTrack()
            tracks.append(self._mic)
        await session.publish(tracks)
        self._devices.sinks.video = self._push_video
        self._devices.sinks.pcm = self._mic.push if self._mic is not None else None
        await self._devices.start_media()
        if camera is not None:
            self._devices.set_wanted_layers(frozenset({self._layer}))
        await wait_connected(session, CONNECT_TIMEOUT)
        log.info("publishing over WHIP to %s (session %s)", url, session.location)

    def _closed_or_left(self) -> bool:
        return self.closed or self._session is None

    async def set_muted(self, muted: bool) -> None:
        """WHIP has no mute signal: the microphone sends silence."""
        if self._mic is not None:
            self._mic.muted = muted

    def participant_count(self) -> int:
        """A WHIP endpoint says nothing of who receives: the unit itself."""
        return 1

    def _release(self) -> None:
        super()._release()
        # The media failed (the call ended by itself): the server's resource goes too.
        if self._session is not None:
            session, self._session = self._session, None
            task = asyncio.get_running_loop().create_task(session.close())
            _ENDING.add(task)
            task.add_done_callback(_ENDING.discard)

    async def leave(self) -> None:
        """DELETE the WHIP session. Idempotent."""
        session, self._session = self._session, None
        self.close()
        if session is not None:
            await session.close()
