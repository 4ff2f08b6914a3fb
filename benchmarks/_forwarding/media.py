"""Load generators for the forwarding benchmark: pre-encoded media, a publisher, receivers.

The publisher sends pre-encoded 720p30 H.264 (libx264, made once at start-up) and Opus
through a plain aiortc peer connection whose sender is an empty shell (the SFU's own seam
module), so it spends no CPU on encoding. Each video frame starts with an SEI NAL unit
carrying the frame's send time (CLOCK_MONOTONIC, shared by all processes on the host):
a receiver reads it back to measure publisher-send to subscriber-receive latency of that
frame, whatever SSRC, sequence numbers and timestamps the SFU rewrote. Receivers are peer
connections whose receivers are also taken over: they count and time packets, never decode.
"""

from __future__ import annotations

import asyncio
import fractions
import random
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from edge_sfu.media import seam

SEI_UUID = b"edge-sfu-latency"  # 16 bytes: user_data_unregistered uuid
FPS = 30
VIDEO_CLOCK = 90000
AUDIO_CLOCK = 48000


def encode_h264(
    frames: int = 300, width: int = 1280, height: int = 720, bitrate: int = 2_500_000
) -> list[bytes]:
    """``frames`` access units of testsrc2 at 30 fps; only the first is a keyframe."""
    src = av.open(f"testsrc2=size={width}x{height}:rate={FPS}", format="lavfi")
    codec = av.CodecContext.create("libx264", "w")
    codec.width = width
    codec.height = height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, FPS)
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.bit_rate = bitrate
    codec.gop_size = 100000
    codec.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "profile": "baseline",
        "threads": "1",
        "x264-params": (
            "keyint=100000:min-keyint=100000:scenecut=0:nal-hrd=cbr:"
            f"vbv-maxrate={bitrate // 1000}:vbv-bufsize={bitrate // 2000}"
        ),
    }
    out: list[bytes] = []
    for i, frame in enumerate(src.decode(video=0)):
        if i >= frames:
            break
        frame.pts = i
        frame.pict_type = (
            av.video.frame.PictureType.I if i == 0 else av.video.frame.PictureType.NONE
        )
        for packet in codec.encode(frame):
            out.append(bytes(packet))
    for packet in codec.encode(None):
        out.append(bytes(packet))
    src.close()
    return out[:frames]


def encode_opus(packets: int = 50) -> list[bytes]:
    """20 ms Opus packets of a tone."""
    import numpy as np

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_CLOCK
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 64000
    codec.time_base = fractions.Fraction(1, AUDIO_CLOCK)
    out: list[bytes] = []
    t = 0
    while len(out) < packets:
        samples = np.arange(t, t + 960)
        tone = (np.sin(2 * np.pi * 440 * samples / AUDIO_CLOCK) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = AUDIO_CLOCK
        frame.pts = t
        t += 960
        for packet in codec.encode(frame):
            out.append(bytes(packet))
    return out[:packets]


def sei_payloads(frame: int) -> bytes:
    """An RTP payload holding one SEI NAL unit (type 6, user data unregistered): frame number."""
    body = SEI_UUID + struct.pack("!Q", frame)
    # payloadType 5, payloadSize len(body), body, rbsp trailing bits
    return bytes([0x06, 0x05, len(body)]) + body + b"\x80"


def read_sei_frame(payload: bytes) -> int | None:
    """The frame number in a payload made by ``sei_payloads`` (None for other payloads)."""
    if len(payload) >= 27 and payload[0] == 0x06 and payload[3:19] == SEI_UUID:
        return int(struct.unpack_from("!Q", payload, 19)[0])
    return None


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def caps(kind: str, mime: str, profile: str | None = None) -> list[Any]:
    out = [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType == mime]
    if profile:
        out = [c for c in out if c.parameters.get("profile-level-id") == profile] or out
    return out


class Publisher:
    """Sends the pre-encoded streams on a peer connection, paced at 30 fps / 50 pps."""

    def __init__(self, video: list[bytes], audio: list[bytes]) -> None:
        self.pc = new_pc()
        self._video = [seam.h264_packetize(au) for au in video]
        self._audio = audio
        self._params: dict[str, seam.SendParams] = {}
        self._paths: dict[str, seam.SendPath] = {}
        self._keyframe_wanted = False
        self._last_keyframe = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self.frames_sent = 0
        self.send_times: dict[int, int] = {}  # frame number -> CLOCK_MONOTONIC ns
        for kind, mime in (("video", "video/H264"), ("audio", "audio/opus")):
            tx = self.pc.addTransceiver(kind, direction="sendonly")
            tx.setCodecPreferences(caps(kind, mime, "42e01f"))
            seam.take_over_sender(tx.sender, self._started(kind, tx.sender), self._rtcp)
            seam.take_over_receiver(tx.receiver, lambda p: None, lambda p: None, lambda p: None)

    def _started(self, kind: str, sender: Any) -> Any:
        def on_start(params: seam.SendParams) -> None:
            self._params[kind] = params
            self._paths[kind] = seam.SendPath(sender.transport)

        return on_start

    def _rtcp(self, packet: Any) -> None:
        if type(packet).__name__ == "RtcpPsfbPacket" and packet.fmt in (1, 4):
            self._keyframe_wanted = True

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def answer_offer(self, sdp: str) -> str:
        """Answer an SFU's offer: our send-only transceivers take its receive-only m-lines."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run_video()), loop.create_task(self._run_audio())]

    async def _run_video(self) -> None:
        seq = random.getrandbits(16)
        ts0 = random.getrandbits(32)
        t0 = time.monotonic()
        n = 0
        index = 0
        while True:
            due = t0 + n / FPS
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            params = self._params.get("video")
            path = self._paths.get("video")
            if params is None or path is None:
                n += 1
                continue
            now = time.monotonic()
            if self._keyframe_wanted and now - self._last_keyframe > 1.0:
                self._keyframe_wanted = False
                self._last_keyframe = now
                index = 0  # the only keyframe of the loop
            payloads = [sei_payloads(n), *self._video[index]]
            ts = (ts0 + n * (VIDEO_CLOCK // FPS)) & 0xFFFFFFFF
            last = len(payloads) - 1
            packets = []
            for i, payload in enumerate(payloads):
                header = struct.pack(
                    "!BBHII",
                    0x80,
                    ((1 if i == last else 0) << 7) | params.codec.payloadType,
                    seq,
                    ts,
                    params.ssrc,
                )
                packets.append((header, payload))
                seq = (seq + 1) & 0xFFFF
            self.send_times[n] = time.monotonic_ns()
            for header, payload in packets:
                path.send_rtp_parts(header, payload)
            self.frames_sent += 1
            n += 1
            index = (index + 1) % len(self._video)
            if index == 0:
                index = 1  # loop over the P frames; the keyframe comes on request

    async def _run_audio(self) -> None:
        seq = random.getrandbits(16)
        ts0 = random.getrandbits(32)
        t0 = time.monotonic()
        n = 0
        while True:
            due = t0 + n * 0.02
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            params = self._params.get("audio")
            path = self._paths.get("audio")
            if params is not None and path is not None:
                payload = self._audio[n % len(self._audio)]
                ts = (ts0 + n * 960) & 0xFFFFFFFF
                path.send_rtp_parts(
                    struct.pack("!BBHII", 0x80, params.codec.payloadType, seq, ts, params.ssrc),
                    payload,
                )
                seq = (seq + 1) & 0xFFFF
            n += 1

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


@dataclass
class Counters:
    packets: int = 0
    latencies: list[float] = field(default_factory=list)


class Receiver:
    """A subscriber that counts RTP packets and measures per-frame latency. Never decodes.

    Datagrams are timed as they reached the socket (the kernel's receive stamp, as the
    SFU's own ingress reads it) and counted, from the RTP header,
    which SRTP leaves in clear. Until the first SEI of the video stream has been decrypted
    (by aiortc, to tie this stream's RTP timestamps to the publisher's frame numbers) the
    datagrams also go on to aiortc; after that they stop there, so the receiving side's
    own processing does not pile onto the latency it measures.
    """

    def __init__(self, publisher: Any = None, video_streams: int = 1) -> None:
        self.pc = new_pc()
        self.counters = Counters()
        #: what sent the frames: anything with ``send_times`` (frame number -> ns)
        self.publisher = publisher
        #: video streams to anchor before datagrams stop going on to aiortc
        self.video_streams = video_streams
        self.measuring = False
        self.pc.on("track", lambda track: None)
        self._adopted: set[int] = set()
        self._hooked: set[int] = set()
        # video ssrc -> (rtp timestamp, frame number) of the first SEI seen
        self._anchor: dict[int, tuple[int, int]] = {}

    def _adopt(self) -> None:
        for tx in self.pc.getTransceivers():
            if id(tx) in self._adopted:
                continue
            self._adopted.add(id(tx))
            seam.take_over_receiver(tx.receiver, lambda p: None, self._on_rtp, lambda p: None)
            seam.take_over_sender(tx.sender, lambda p: None, lambda p: None)
            self._hook(tx.receiver.transport)

    def _hook(self, dtls: Any) -> None:
        connection = dtls.transport._connection
        if id(connection) in self._hooked:
            return
        self._hooked.add(id(connection))
        original = connection.data_received
        anchors = self._anchor
        counters = self.counters
        header = struct.Struct("!BBHII")

        def data_received(data: bytes, component: int) -> None:
            if len(data) >= 12 and 127 < data[0] < 192 and not 192 <= data[1] <= 223:
                # when the datagram reached the socket (the kernel's stamp, read with the
                # burst): the measuring process's own delays are not the SFU's
                now = int(seam.arrival_time() * 1e9)
                _, m_pt, _, ts, ssrc = header.unpack_from(data)
                if self.measuring:
                    counters.packets += 1
                    anchor = anchors.get(ssrc)
                    if m_pt & 0x80 and anchor is not None and self.publisher is not None:
                        frame = anchor[1] + ((ts - anchor[0]) & 0xFFFFFFFF) // (VIDEO_CLOCK // FPS)
                        sent = self.publisher.send_times.get(frame)
                        if sent is not None:
                            counters.latencies.append((now - sent) / 1e6)
                if len(anchors) >= self.video_streams:
                    return
            original(data, component)

        connection.data_received = data_received

    @property
    def anchors(self) -> dict[int, tuple[int, int]]:
        """Video SSRC -> (RTP timestamp, frame number) of each stream's first SEI seen."""
        return self._anchor

    def _on_rtp(self, packet: Any) -> None:
        frame = read_sei_frame(packet.payload)
        if frame is not None:
            self._anchor.setdefault(packet.ssrc, (packet.timestamp, frame))

    async def answer_offer(self, sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self._adopt()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        # read bursts in one go, as the SFU does: the receiving side must not be the
        # bottleneck of the latency it measures
        for tx in self.pc.getTransceivers():
            for protocol in tx.receiver.transport.transport._connection._protocols:
                seam.drain_socket_reads(protocol)
        return str(self.pc.localDescription.sdp)

    async def close(self) -> None:
        await self.pc.close()


#: Simulcast layers the capacity benchmark publishes, lowest first: rid, size, bitrate.
SIMULCAST = (("q", 320, 180, 250_000), ("h", 640, 360, 800_000), ("f", 1280, 720, 2_500_000))


def with_send_simulcast(sdp: str, rids: list[str]) -> str:
    """``sdp`` with the video section sending ``rids`` (in that order) as rid-based
    simulcast (RFC 8853): aiortc does not send simulcast, so the lines it would write are
    added here."""
    lines = sdp.split("\r\n")
    out: list[str] = []
    video = False
    for line in lines:
        if line.startswith("m="):
            if video:
                out.extend([f"a=rid:{rid} send" for rid in rids])
                out.append("a=simulcast:send " + ";".join(rids))
            video = line.startswith("m=video")
        out.append(line)
    if video:
        end = len(out) - 1 if out and out[-1] == "" else len(out)
        out[end:end] = [f"a=rid:{rid} send" for rid in rids] + [
            "a=simulcast:send " + ";".join(rids)
        ]
    return "\r\n".join(out)


class SimulcastPublisher(Publisher):
    """A ``Publisher`` whose video goes out as three simulcast layers (``SIMULCAST``), each
    on its own SSRC, with the mid and rid header extensions the SFU routes them by. Every
    frame's SEI carries ``tag << 32 | frame`` so receivers of many publishers can tell
    whose frame they timed."""

    def __init__(self, layers: dict[str, list[bytes]], audio: list[bytes], tag: int) -> None:
        super().__init__(next(iter(layers.values())), audio)
        # rid -> packetized access units
        self._layers = {rid: [seam.h264_packetize(au) for au in aus] for rid, aus in layers.items()}
        self.tag = tag
        self.sent: dict[str, int] = dict.fromkeys(layers, 0)  # packets per layer
        self.audio_sent = 0
        self.counting = False

    def _started(self, kind: str, sender: Any) -> Any:
        started = super()._started(kind, sender)

        def on_start(params: seam.SendParams) -> None:
            started(params)
            # keyframe requests name the layer's SSRC, which no sender owns: read them raw
            seam.tap_rtcp(sender.transport, self._raw_rtcp)

        return on_start

    def _raw_rtcp(self, data: bytes) -> None:
        pos = 0
        while pos + 4 <= len(data):
            if data[pos + 1] == 206 and data[pos] & 0x1F in (1, 4):  # PLI, FIR
                self._keyframe_wanted = True
            pos += 4 * (((data[pos + 2] << 8) | data[pos + 3]) + 1)

    def _extension(self, mid: str, rid: str) -> bytes:
        elements = bytes([(seam.EXT_MID << 4) | (len(mid) - 1)]) + mid.encode()
        elements += bytes([(seam.EXT_RTP_STREAM_ID << 4) | (len(rid) - 1)]) + rid.encode()
        elements += bytes(-len(elements) % 4)
        return struct.pack("!HH", 0xBEDE, len(elements) // 4) + elements

    async def _run_video(self) -> None:
        names = list(self._layers)
        ssrcs = {name: random.getrandbits(32) for name in names}
        seqs = {name: random.getrandbits(16) for name in names}
        ts0 = random.getrandbits(32)
        t0 = time.monotonic()
        n = 0
        index = 0
        exts: dict[str, bytes] = {}
        while True:
            due = t0 + n / FPS
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            params = self._params.get("video")
            path = self._paths.get("video")
            if params is None or path is None:
                n += 1
                continue
            if not exts:
                mid = params.mid or "0"
                exts = {name: self._extension(mid, name) for name in names}
            now = time.monotonic()
            if self._keyframe_wanted and now - self._last_keyframe > 1.0:
                self._keyframe_wanted = False
                self._last_keyframe = now
                index = 0
            ts = (ts0 + n * (VIDEO_CLOCK // FPS)) & 0xFFFFFFFF
            frame = (self.tag << 32) | n
            self.send_times[frame] = time.monotonic_ns()
            for name in names:
                payloads = [sei_payloads(frame), *self._layers[name][index]]
                last = len(payloads) - 1
                ext = exts[name]
                for i, payload in enumerate(payloads):
                    header = struct.pack(
                        "!BBHII",
                        0x90,
                        ((1 if i == last else 0) << 7) | params.codec.payloadType,
                        seqs[name],
                        ts,
                        ssrcs[name],
                    )
                    path.send_rtp_parts(header + ext, payload)
                    seqs[name] = (seqs[name] + 1) & 0xFFFF
                if self.counting:
                    self.sent[name] += len(payloads)
            self.frames_sent += 1
            n += 1
            index = (index + 1) % len(self._video)
            if index == 0:
                index = 1

    async def _run_audio(self) -> None:
        # counts what it sends (the capacity benchmark's loss is received against sent)
        seq = random.getrandbits(16)
        ts0 = random.getrandbits(32)
        t0 = time.monotonic()
        n = 0
        while True:
            due = t0 + n * 0.02
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            params = self._params.get("audio")
            path = self._paths.get("audio")
            if params is not None and path is not None:
                payload = self._audio[n % len(self._audio)]
                ts = (ts0 + n * 960) & 0xFFFFFFFF
                path.send_rtp_parts(
                    struct.pack("!BBHII", 0x80, params.codec.payloadType, seq, ts, params.ssrc),
                    payload,
                )
                seq = (seq + 1) & 0xFFFF
                if self.counting:
                    self.audio_sent += 1
            n += 1
