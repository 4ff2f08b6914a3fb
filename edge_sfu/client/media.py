"""The client's media: one aiortc peer connection that answers the server's offers.

The server makes every offer (``docs/signaling.md``). For a track we publish, the offer
has a receive-only m-line and tells us its ``mid``; we attach the track there and answer
``sendonly``. For a track we receive, the m-line is send-only and ``track-subscribed``
later names its ``mid``.
"""

from __future__ import annotations

import asyncio
import fractions
import functools
import logging
import random
from collections.abc import Callable
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from ..media import seam
from ..media.packet import h264_keyframe_start, vp8_keyframe_start
from ..media.transport import FEEDBACK_INTERVAL_S
from ..media.twcc import FeedbackBuilder
from .uplink import AUDIO_BPS, AdaptedVideoTrack

logger = logging.getLogger(__name__)

MICROSECONDS = fractions.Fraction(1, 1_000_000)


class EncodedVideoTrack(MediaStreamTrack):  # type: ignore[misc]
    """A video track fed with encoded H.264 access units (Annex B); aiortc only packetizes.

    ``push`` from the event loop, ``push_threadsafe`` from an encoder thread. Timestamps
    are microseconds on any monotonic clock. aiortc cannot ask a pre-encoded source for a
    keyframe itself, so ``on_keyframe_request`` is called when the receiver asked for one
    (the source should then encode an IDR).
    """

    kind = "video"

    def __init__(self, queue_size: int = 30) -> None:
        super().__init__()
        self._queue: asyncio.Queue[av.Packet[Any]] = asyncio.Queue(maxsize=queue_size)
        self._owner_loop = asyncio.get_running_loop()
        self.sender: Any = None
        self.on_keyframe_request: Any = None
        #: The latest bitrate (bit/s) the receiving unit said this track may use (its REMB:
        #: its estimate of our uplink, capped by what its subscribers take), or None before
        #: it said. ``on_bitrate_hint(bps)`` is called with each one.
        self.bitrate_hint: int | None = None
        self.on_bitrate_hint: Callable[[int], None] | None = None
        self.frames_sent = 0

    def push(self, data: bytes, keyframe: bool, timestamp_us: int) -> None:
        """Queue one access unit; when the sender falls behind, the oldest is dropped."""
        packet = av.Packet(data)
        packet.pts = timestamp_us
        packet.time_base = MICROSECONDS
        packet.is_keyframe = keyframe
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(packet)

    def push_threadsafe(self, data: bytes, keyframe: bool, timestamp_us: int) -> None:
        """``push`` from any thread."""
        self._owner_loop.call_soon_threadsafe(self.push, data, keyframe, timestamp_us)

    async def recv(self) -> av.Packet[Any]:
        """The next access unit (aiortc's sender calls this)."""
        self._check_keyframe_request()
        packet = await self._queue.get()
        self.frames_sent += 1
        return packet

    def _hint(self, bps: int) -> None:
        self.bitrate_hint = bps
        if self.on_bitrate_hint is not None:
            self.on_bitrate_hint(bps)

    def _check_keyframe_request(self) -> None:
        wanted = self.sender is not None and seam.take_keyframe_request(self.sender)
        if wanted and self.on_keyframe_request is not None:
            self.on_keyframe_request()


def _hint_track(sender: Any, bps: int) -> None:
    # whatever track the sender carries now (an m-line outlives its publications)
    track = sender.track
    if isinstance(track, EncodedVideoTrack):
        track._hint(bps)
    elif isinstance(track, AdaptedVideoTrack):
        track.budget.hint(bps)


def rtc_configuration(ice_servers: list[dict[str, Any]] | None) -> RTCConfiguration:
    """An explicit ICE server list (maybe empty): aiortc's default would contact Google.

    One bundled transport, as the unit has: with aiortc's default policy (a transport per
    kind), an offer adding two m-lines of a kind after the first m-line puts the second on
    the first one's transport, which bundling then stops: that m-line never receives (a
    client joining a room with two cameras and two microphones in it heard only one).
    """
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in (ice_servers or [])
    ]
    return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


class DownlinkFeedback:
    """Transport-cc feedback for what arrives on one DTLS transport
    (draft-holmer-rmcat-transport-wide-cc-extensions-01), every ``FEEDBACK_INTERVAL_S`` (as
    the SFU sends its own).

    With it the SFU estimates this client's downlink from delay, as it does a browser's,
    and probes it before stepping a track up; without it, only from the loss its receiver
    reports show, which finds a link's capacity by overflowing it.
    """

    def __init__(self, dtls: Any, ext_id: int) -> None:
        self._dtls = dtls
        self._builder = FeedbackBuilder()
        self._ssrc = random.getrandbits(32) or 1  # an SSRC, not a secret
        self._media_ssrc = 0
        #: Feedback packets sent.
        self.sent = 0
        self.installed = seam.tap_transport_sequence(dtls, ext_id, self._arrived)

    def _arrived(self, seq: int, arrival: float, ssrc: int) -> None:
        self._media_ssrc = ssrc
        self._builder.on_packet(seq, int(arrival * 1_000_000))

    async def send(self) -> None:
        """Send the feedback for what arrived since the last call."""
        for feedback in self._builder.build(self._ssrc, self._media_ssrc):
            if await seam.send_rtcp(self._dtls, feedback.serialize()):
                self.sent += 1

    async def run(self) -> None:
        """``send`` every ``FEEDBACK_INTERVAL_S`` until cancelled."""
        while True:
            await asyncio.sleep(FEEDBACK_INTERVAL_S)
            try:
                await self.send()
            except Exception:  # a malformed arrival must not end the feedback for good
                logger.exception("transport-cc feedback failed")


def _keyframe_detector(mime_type: str) -> Callable[[bytes], bool] | None:
    return {"video/h264": h264_keyframe_start, "video/vp8": vp8_keyframe_start}.get(
        mime_type.lower()
    )


class PeerSession:
    """The peer connection and the mapping of ``mid``s to tracks.

    Each video receiver recovers from loss as a browser's does (``seam.ReceiverRepair``:
    missing packets asked for again, a stalled picture skipped to a keyframe): aiortc's own
    receiver asks once and then waits for the packet, seconds on a congested link.
    """

    def __init__(self, ice_servers: list[dict[str, Any]] | None) -> None:
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self._lock = asyncio.Lock()
        #: By receiver: its repair and the task that runs it (cancelled on close).
        self.repairs: dict[int, tuple[seam.ReceiverRepair, asyncio.Task[None]]] = {}
        self._bounded: set[int] = set()  # receivers whose decoded frames are bounded
        #: By DTLS transport (one with BUNDLE): its transport-cc feedback and its task.
        self.feedback: dict[int, tuple[DownlinkFeedback, asyncio.Task[None]]] = {}
        #: By id of a published raw video track: what is sent of it (``uplink``).
        self._adapted: dict[int, AdaptedVideoTrack] = {}

    def _sent_form(self, track: MediaStreamTrack) -> MediaStreamTrack:
        """What a published track is sent as: raw video through its ``AdaptedVideoTrack``
        (the encoder's target and picture size follow the unit's REMB), the rest as is."""
        if track.kind != "video" or isinstance(track, EncodedVideoTrack):
            return track
        adapted = self._adapted.get(id(track))
        if adapted is None or adapted.source is not track:
            adapted = self._adapted[id(track)] = AdaptedVideoTrack(track)
        return adapted

    def transceiver(self, mid: str) -> RTCRtpTransceiver | None:
        """The transceiver of ``mid``, if negotiated."""
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid == mid:
                return transceiver
        return None

    async def answer(self, sdp: str, publish: dict[str, MediaStreamTrack]) -> str:
        """Apply the server's offer, attach ``publish`` (mid -> track), return our answer."""
        async with self._lock:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for mid, track in publish.items():
                transceiver = self.transceiver(mid)
                if transceiver is None:
                    continue
                sent = self._sent_form(track)
                if transceiver.sender.track is not sent:
                    # a new track on a sender used before: a new encoder for it
                    seam.drop_encoder(transceiver.sender)
                    transceiver.sender.replaceTrack(sent)
                transceiver.direction = "sendonly"
                if isinstance(sent, EncodedVideoTrack | AdaptedVideoTrack):
                    sent.sender = transceiver.sender
                    # aiortc's encoder no longer takes REMB itself: the track steers it
                    seam.watch_bitrate_hints(
                        transceiver.sender,
                        functools.partial(_hint_track, transceiver.sender),
                        keep_from_encoder=True,
                    )
                codecs = seam.negotiated_codecs(transceiver)
                if track.kind == "audio" and codecs:
                    # before the answer starts the sender, whose first frame makes an encoder
                    seam.preset_audio_bitrate(transceiver.sender, codecs[0], AUDIO_BPS)
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
            self._harden()
            sdp = str(self.pc.localDescription.sdp)
            self._repair_receivers()
            self._send_feedback(sdp)
            return sdp

    def _send_feedback(self, answer: str) -> None:
        ids = seam.ExtensionIds()
        ids.learn(answer)
        if not ids.transport_cc:
            return
        for transceiver in self.pc.getTransceivers():
            dtls = transceiver.receiver.transport
            if id(dtls) in self.feedback:
                continue
            feedback = DownlinkFeedback(dtls, ids.transport_cc)
            task = asyncio.create_task(feedback.run(), name="transport-cc feedback")
            self.feedback[id(dtls)] = (feedback, task)

    def _repair_receivers(self) -> None:
        for transceiver in self.pc.getTransceivers():
            receiver = transceiver.receiver
            video = transceiver.kind == "video"
            if id(receiver) not in self._bounded and seam.bound_decoded_frames(
                receiver, seam.DECODED_VIDEO_FRAMES if video else seam.DECODED_AUDIO_FRAMES
            ):
                self._bounded.add(id(receiver))
            if not video or id(receiver) in self.repairs:
                continue
            repair = seam.ReceiverRepair(receiver, _keyframe_detector)
            task = asyncio.create_task(repair.run(), name=f"repair {transceiver.mid}")
            self.repairs[id(receiver)] = (repair, task)

    def detach(self, track: MediaStreamTrack) -> None:
        """Stop sending ``track`` (it was unpublished).

        The sender would otherwise keep pulling and encoding its frames for as long as the
        peer connection lives, though nothing receives them: a client that publishes and
        unpublishes again and again would end up encoding every track it ever published.
        The track itself is the caller's (it may publish it again), so it is not stopped.
        """
        adapted = self._adapted.pop(id(track), None)
        for transceiver in self.pc.getTransceivers():
            current = transceiver.sender.track
            if current is not None and (current is track or current is adapted):
                transceiver.sender.replaceTrack(None)
        for sent in (track, adapted):
            if isinstance(sent, EncodedVideoTrack | AdaptedVideoTrack):
                sent.sender = None

    def _harden(self) -> None:
        # One stray empty UDP datagram at our port would otherwise end the connection.
        for transceiver in self.pc.getTransceivers():
            seam.harden_ice_input(transceiver.receiver.transport)
        if self.pc.sctp is not None:
            seam.harden_ice_input(self.pc.sctp.transport)

    async def close(self) -> None:
        """Close the peer connection."""
        tasks = [task for _, task in [*self.repairs.values(), *self.feedback.values()]]
        self.repairs, self.feedback = {}, {}
        for task in tasks:
            task.cancel()
        await self.pc.close()
