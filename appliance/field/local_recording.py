"""While a field unit cannot publish, its camera and microphone are recorded on the unit.

The recording is the kiosk's own local call (``LocalCall``: the encoded camera layers and the
microphone straight into this unit's SFU, in-process) into a room of the unit's own
(``field.local_room``) that records everything: the SFU's recorder is one more subscriber
there, so the files, the quota and the REST listing (``/v1/Recordings``) are the recordings
service's. The camera keeps running across the switch: the local call is a second user of
the devices (``DeviceUse``), and the call to the hub the first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from edge_sfu.signaling import SignalingService

from ..kiosk.devices import KioskDevices
from ..kiosk.mixer import AudioMixer
from ..recording import record_everything

log = logging.getLogger(__name__)

#: How long leaving the local room may take before it is abandoned (seconds).
LEAVE_TIMEOUT = 10.0


class LocalRecording:
    """Follows ``wanted``: records into the local room while it is true.

    ``follow()`` brings the recording in line with ``wanted`` (calls are serialised, so the
    last one wins); ``close()`` stops it for good.
    """

    def __init__(
        self,
        signaling: Callable[[], SignalingService],
        devices: KioskDevices,
        mixer: AudioMixer,
        room: str,
        identity: str,
    ) -> None:
        self._signaling = signaling
        self._devices = devices
        self._mixer = mixer
        self.room = room
        self._identity = identity
        self.wanted = False
        self._call: object | None = None  # a LocalCall (imported lazily with aiortc)
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def active(self) -> bool:
        """Whether the camera is being recorded locally now."""
        return self._call is not None

    async def follow(self) -> None:
        """Start or stop the local recording as ``wanted`` says now."""
        async with self._lock:
            if self.wanted and not self._closed and self._call is None:
                await self._start()
            elif (not self.wanted or self._closed) and self._call is not None:
                await self._stop()

    async def close(self) -> None:
        """Stop recording (the file is finished) and never start again."""
        self._closed = True
        await self.follow()

    async def _start(self) -> None:
        from ..kiosk.call import LocalCall

        service = self._signaling()
        call = LocalCall(service, self._devices.use(), self._mixer, self._ended)
        try:
            await call.join(self.room, self._identity, muted=False)
            await record_everything(service.rooms, call.room_sid)
        except Exception as exc:  # the link's retries go on; the next loss tries again
            log.error("local recording could not start: %s", exc)
            await call.leave()
            return
        self._call = call
        log.info("link down: recording locally in room %s", self.room)

    async def _stop(self) -> None:
        from ..kiosk.call import LocalCall

        call, self._call = self._call, None
        assert isinstance(call, LocalCall)
        try:
            await asyncio.wait_for(call.leave(), LEAVE_TIMEOUT)
        except Exception as exc:  # the recording service finishes the file either way
            log.warning("leaving the local recording room failed: %s", exc)
        log.info("local recording stopped")

    def _ended(self, reason: str, code: int | None) -> None:
        # The local room ended under the call (removed through the REST API, say): the next
        # follow() starts again if the link is still down.
        log.warning("local recording ended: %s (%s)", reason, code)
        self._call = None
