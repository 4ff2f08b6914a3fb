"""A kiosk's call: its camera and microphone in a room, the room's audio on its speaker.

``LocalCall`` joins a room on this unit's own SFU in-process (``LocalParticipant``: encoded
frames straight into the forwarder, no loopback WebRTC). ``RemoteCall`` joins a room on
another unit through the Python client, so two meeting rooms can talk. Both publish the
camera's layers and the microphone, feed remote audio to the ``AudioMixer`` and report the
end of the call through ``on_ended``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack

from edge_common.lifecycle import Closeable, TaskSet
from edge_sfu import client as sfu_client
from edge_sfu.media import H264, OPUS, EncodedFrame, LayerSpec, LocalConsumer, LocalProducer
from edge_sfu.rooms import events as ev
from edge_sfu.signaling import LocalParticipant, SignalingService
from hardware.audio.capture import OpusPacket
from hardware.camera.base import AccessUnit

from .devices import DeviceUse
from .mixer import RATE, AudioMixer
from .uplink import UplinkLayerChoice

log = logging.getLogger(__name__)

#: How often a call re-checks which remote audio tracks it should be hearing (seconds).
RECONCILE_INTERVAL = 1.0


class Call(Protocol):
    """What the kiosk role needs of a call, wherever the room is."""

    on_link: Callable[[bool], None] | None

    async def set_muted(self, muted: bool) -> None:
        """Disable (or enable) the microphone track; the others see it."""

    async def leave(self) -> None:
        """Leave the room and stop the media. Idempotent."""

    def participant_count(self) -> int:
        """People in the room, the kiosk included."""


class _CallBase(Closeable):
    """What both kinds of call share: the devices, the mixer and ending exactly once.

    ``close`` stops the media and lets go of what the call holds, once, whichever comes
    first: the room ending the call or ``leave`` (which then also leaves the room).
    """

    def __init__(
        self, devices: DeviceUse, mixer: AudioMixer, on_ended: Callable[[str, int | None], None]
    ) -> None:
        super().__init__()
        self._devices = devices
        self._mixer = mixer
        self._on_ended = on_ended
        self._tasks = TaskSet("kiosk call")
        #: Told False when the link to the room drops while the call lives (the client is
        #: re-making it) and True when it is back; set by whoever cares (a field unit).
        self.on_link: Callable[[bool], None] | None = None

    def _link(self, up: bool) -> None:
        if self.on_link is not None and not self.closed:
            self.on_link(up)

    def _ended(self, reason: str, code: int | None) -> None:
        """The room ended the call (kick, room completed, connection lost)."""
        if not self.closed:
            self.close()
            self._on_ended(reason, code)

    def _on_close(self) -> None:
        self._devices.release()
        # Closed from room events, which are synchronous: the tasks end on the next turns.
        self._tasks.cancel()
        self._release()

    def _release(self) -> None:
        """Let go of what the call holds besides the devices."""


class LocalCall(_CallBase):
    """The kiosk in a room of this unit's own SFU."""

    def __init__(
        self,
        service: SignalingService,
        devices: DeviceUse,
        mixer: AudioMixer,
        on_ended: Callable[[str, int | None], None],
    ) -> None:
        super().__init__(devices, mixer, on_ended)
        self._service = service
        self._local: LocalParticipant | None = None
        self._video: LocalProducer | None = None
        self._audio: LocalProducer | None = None
        self._consumers: dict[str, LocalConsumer] = {}
        self._unlisten: Callable[[], None] | None = None

    async def join(self, room: str, identity: str, *, muted: bool) -> None:
        """Connect and publish; raises the SFU's ``TwilioError`` when the room refuses."""
        local = await self._service.connect_local(room, identity)
        self._local = local
        # How the call ends comes from the room's ParticipantDisconnected event, which
        # carries the reason code (kicked, room completed...); ``local.on_disconnected``
        # fires first but without it, and a kick must not look like a dropped call.
        self._unlisten = self._service.rooms.add_listener(self._on_room_event)
        camera = self._devices.camera
        if camera is not None:
            layers = [
                LayerSpec(x.name, x.width, x.height, x.bitrate or None) for x in camera.spec.layers
            ]
            self._video = await local.publish(
                "camera",
                H264,
                layers=layers,
                on_keyframe_request=self._devices.request_keyframe,
                on_wanted_layers=self._devices.set_wanted_layers,
            )
        if self._devices.capture is not None:
            self._audio = await local.publish("microphone", OPUS, enabled=not muted)
        self._devices.sinks.video = self._push_video
        self._devices.sinks.audio = self._push_audio
        await self._devices.start_media()
        self._tasks.spawn(self._reconcile_forever(), name="kiosk-call-reconcile")

    @property
    def room_sid(self) -> str:
        """The SID of the room joined ('' before the join)."""
        return "" if self._local is None else self._local.room_sid

    def _push_video(self, au: AccessUnit) -> None:
        if self._video is not None:
            self._video.push(EncodedFrame(au.data, au.keyframe, au.capture_us, au.layer))

    def _push_audio(self, packet: OpusPacket) -> None:
        if self._audio is not None and self._audio.enabled:
            self._audio.push(
                EncodedFrame(packet.data, True, packet.capture_us, audio_level=packet.level_dbov)
            )

    async def set_muted(self, muted: bool) -> None:
        """Mute or unmute the microphone track."""
        if self._local is not None and self._audio is not None and self._local.connected:
            self._audio.set_enabled(not muted)
            await self._local.set_enabled(self._audio, not muted)

    def participant_count(self) -> int:
        """People in the room now."""
        if self._local is None:
            return 0
        room = self._service.rooms.live_room(self._local.room_sid)
        return 0 if room is None else len(room.participants)

    def _on_room_event(self, event: object) -> None:
        me = self._local
        if (
            isinstance(event, ev.ParticipantDisconnected)
            and me is not None
            and event.participant.sid == me.sid
        ):
            self._ended("removed from the room", event.reason_code)
        elif isinstance(
            event, ev.TrackPublished | ev.TrackUnpublished | ev.ParticipantDisconnected
        ):
            self._reconcile()

    async def _reconcile_forever(self) -> None:
        # Remote producers appear when their media starts, which no room event marks:
        # a slow periodic check catches them; events make the common case immediate.
        while True:
            self._reconcile()
            await asyncio.sleep(RECONCILE_INTERVAL)

    def _reconcile(self) -> None:
        local = self._local
        if local is None or not local.connected:
            return
        router = local.router
        wanted = {
            pid: p
            for pid, p in router.producers.items()
            if p.kind == "audio" and p.participant_id != local.sid and not p.closed
        }
        for pid in set(self._consumers) - set(wanted):
            self._consumers.pop(pid).close()
            self._mixer.remove(pid)
        for pid, producer in wanted.items():
            if pid not in self._consumers:
                on_frame = self._hear(pid)
                self._consumers[pid] = router.consume_local(producer, on_frame)

    def _hear(self, key: str) -> Callable[[EncodedFrame], None]:
        return lambda frame: self._mixer.add_opus(key, frame.data)

    def _release(self) -> None:
        if self._unlisten is not None:
            self._unlisten()
        for pid, consumer in self._consumers.items():
            consumer.close()
            self._mixer.remove(pid)
        self._consumers.clear()

    async def leave(self) -> None:
        """Leave the room. Idempotent."""
        self.close()
        if self._local is not None:
            await self._local.disconnect()


class PcmTrack(MediaStreamTrack):  # type: ignore[misc]
    """The microphone as raw 48 kHz mono PCM for aiortc to encode (the remote-call path).

    Only used when the kiosk joins another unit: there, the Python client's peer connection
    owns the encoder, as any WebRTC client does.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=50)
        self._pts = 0
        self.muted = False

    def push(self, pcm: bytes) -> None:
        """Queue one period (drops the oldest when the sender falls behind)."""
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(bytes(len(pcm)) if self.muted else pcm)

    async def recv(self) -> av.AudioFrame:
        """The next period as an ``AudioFrame``."""
        pcm = await self._queue.get()
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += samples.shape[1]
        return frame


class RemoteCall(_CallBase):
    """The kiosk in a room on another unit, through the Python client."""

    def __init__(
        self, devices: DeviceUse, mixer: AudioMixer, on_ended: Callable[[str, int | None], None]
    ) -> None:
        super().__init__(devices, mixer, on_ended)
        self._room: sfu_client.Room | None = None
        self._video: sfu_client.EncodedVideoTrack | None = None
        self._mic: PcmTrack | None = None
        self._mic_pub: sfu_client.LocalTrackPublication | None = None
        self._layer = ""
        # the layer the uplink carries, waiting for its first keyframe before it is sent
        self._next_layer: str | None = None
        self._uplink: UplinkLayerChoice | None = None
        self._readers: dict[str, asyncio.Task[None]] = {}

    async def join(self, signaling_url: str, token: str, room: str, *, muted: bool) -> None:
        """Connect to the other unit and publish; raises ``ConnectError`` when refused."""
        self._room = await sfu_client.connect(signaling_url, token, room=room)
        self._room.on("track_subscribed", self._subscribed)
        self._room.on("track_unsubscribed", self._unsubscribed)
        self._room.on("disconnected", lambda code, message: self._ended(str(message), code))
        self._room.on("reconnecting", lambda: self._link(False))
        self._room.on("reconnected", lambda: self._link(True))
        camera = self._devices.camera
        if camera is not None:
            # The client publishes one layer: the largest the camera makes, until the other
            # unit's bitrate hints say the uplink carries only a smaller one.
            self._uplink = UplinkLayerChoice(camera.spec.layers, camera.spec.framerate)
            self._layer = self._uplink.layer
            self._video = await self._room.publish_encoded_video("camera")
            self._video.on_keyframe_request = lambda: self._devices.request_keyframe(self._layer)
            self._video.on_bitrate_hint = self._bitrate_hint
            self._devices.set_wanted_layers(frozenset({self._layer}))
        if self._devices.capture is not None:
            self._mic = PcmTrack()
            self._mic.muted = muted
            self._mic_pub = await self._room.publish_track(self._mic, "microphone")
            if muted:
                self._room.set_track_enabled(self._mic_pub, False)
        self._devices.sinks.video = self._push_video
        self._devices.sinks.pcm = self._mic.push if self._mic is not None else None
        await self._devices.start_media()
        if camera is not None:
            self._devices.set_wanted_layers(frozenset({self._layer}))

    def _bitrate_hint(self, bps: int) -> None:
        if self._uplink is None or self._closed_or_left():
            return
        layer = self._uplink.on_hint(bps)
        if layer is None:
            return
        if layer == self._layer:
            self._next_layer = None  # back before the switch happened
            self._devices.set_wanted_layers(frozenset({self._layer}))
            return
        log.info("uplink hint %d bit/s: sending camera layer %s", bps, layer)
        # Encode both until the new layer's keyframe: the stream switches on it.
        self._next_layer = layer
        self._devices.set_wanted_layers(frozenset({self._layer, layer}))
        self._devices.request_keyframe(layer)

    def _closed_or_left(self) -> bool:
        return self.closed or self._room is None

    @property
    def sent_layer(self) -> str:
        """The camera layer sent to the other unit now."""
        return self._layer

    def _push_video(self, au: AccessUnit) -> None:
        if self._video is None:
            return
        if au.layer == self._next_layer and au.keyframe:
            self._layer, self._next_layer = au.layer, None
            self._devices.set_wanted_layers(frozenset({self._layer}))
        if au.layer == self._layer:
            self._video.push(au.data, au.keyframe, au.capture_us)

    def _subscribed(self, track: Any, pub: Any, who: Any) -> None:
        if getattr(track, "kind", "") == "audio":
            key = str(getattr(pub, "sid", id(track)))
            self._readers[key] = self._tasks.spawn(self._read(key, track), name=f"kiosk-hear-{key}")

    def _unsubscribed(self, track: Any, pub: Any, who: Any) -> None:
        key = str(getattr(pub, "sid", id(track)))
        task = self._readers.pop(key, None)
        if task is not None:
            task.cancel()
        self._mixer.remove(key)

    async def _read(self, key: str, track: Any) -> None:
        with contextlib.suppress(Exception):  # the track ends with MediaStreamError
            while True:
                self._mixer.add_frame(key, await track.recv())

    async def set_muted(self, muted: bool) -> None:
        """Mute or unmute the microphone track."""
        if self._mic is not None and self._mic_pub is not None and self._room is not None:
            self._mic.muted = muted
            self._room.set_track_enabled(self._mic_pub, not muted)

    def participant_count(self) -> int:
        """People in the room now, the kiosk included."""
        return 0 if self._room is None else 1 + len(self._room.participants)

    def _release(self) -> None:
        for key in self._readers:  # their tasks are cancelled with the call's others
            self._mixer.remove(key)
        self._readers.clear()

    async def leave(self) -> None:
        """Leave the other unit's room. Idempotent."""
        self.close()
        if self._room is not None:
            room, self._room = self._room, None
            await room.close()


async def fetch_remote_token(
    base_url: str, key_sid: str, key_secret: str, identity: str, room: str
) -> str:
    """Ask another unit's token endpoint (``POST /v1/Tokens``) for a token to its room."""
    auth = aiohttp.BasicAuth(key_sid, key_secret)
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            f"{base_url.rstrip('/')}/v1/Tokens",
            data={"Identity": identity, "Room": room},
            auth=auth,
        ) as response,
    ):
        body = await response.json(content_type=None)
        if not 200 <= response.status < 300 or not isinstance(body, dict) or "token" not in body:
            message = body.get("message") if isinstance(body, dict) else None
            raise ConnectionError(f"token request refused ({response.status}): {message}")
        return str(body["token"])


def signaling_url(base_url: str) -> str:
    """``https://unit:8443`` → ``wss://unit:8443/v1/signaling``."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/v1/signaling"
    return "ws://" + base.removeprefix("http://") + "/v1/signaling"
