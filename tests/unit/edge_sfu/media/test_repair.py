"""A decoding aiortc video receiver with ``seam.ReceiverRepair``: missing packets are asked
for again, and a picture stalled behind a lost packet skips to a keyframe (one already
buffered, else the one a PLI asks for), on aiortc's own receiver and jitter buffer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import RtpPacket

from edge_sfu.media import seam
from edge_sfu.media.packet import vp8_keyframe_start
from edge_sfu.media.seam.repair import RENACK_S, STALL_S

PT = 96
SSRC = 1234


class Receiver:
    """aiortc's video receiver, fed as its RTP path feeds it, with its feedback recorded."""

    def __init__(self, receiver: Any) -> None:
        self.receiver = receiver
        receiver._RTCRtpReceiver__codecs[PT] = RTCRtpCodecParameters(
            mimeType="video/VP8", clockRate=90000, payloadType=PT
        )
        self.nacks: list[list[int]] = []
        self.plis = 0
        self.frames: list[int] = []  # timestamps of the frames out of the jitter buffer
        self.now = 100.0

        async def nack(ssrc: int, lost: list[int]) -> None:
            self.nacks.append(lost)

        async def pli(ssrc: int) -> None:
            self.plis += 1

        receiver._send_rtcp_nack = nack
        receiver._send_rtcp_pli = pli
        self.repair = seam.ReceiverRepair(
            receiver, lambda mime: vp8_keyframe_start if mime == "video/VP8" else None, self.clock
        )

    def clock(self) -> float:
        return self.now

    def feed(self, seq: int, ts: int, key: bool = False) -> None:
        # RFC 7741: S bit on a frame's first packet; the VP8 header's P bit 0 on a keyframe
        payload = bytes([0x10, 0x00 if key else 0x01]) + b"vp8"
        packet = RtpPacket(payload_type=PT, sequence_number=seq, timestamp=ts, ssrc=SSRC)
        packet.payload = payload
        packet._data = payload  # type: ignore[attr-defined]  (aiortc depayloads first)
        self.receiver._RTCRtpReceiver__nack_generator.add(packet)
        _, frame = self.receiver._RTCRtpReceiver__jitter_buffer.add(packet)
        if frame is not None:
            self.frames.append(frame.timestamp)

    async def tick(self, seconds: float) -> None:
        self.now += seconds
        await self.repair.tick(self.now)


@pytest.fixture
async def video() -> AsyncIterator[Receiver]:
    pc = RTCPeerConnection()
    try:
        yield Receiver(pc.addTransceiver("video", direction="recvonly").receiver)
    finally:
        await pc.close()


async def test_missing_packets_are_asked_for_again_until_they_come(video: Receiver) -> None:
    video.feed(100, 1000, key=True)
    video.feed(101, 2000)
    video.feed(103, 3000)  # 102 lost
    await video.tick(RENACK_S)
    await video.tick(RENACK_S)
    assert video.nacks == [[102], [102]]  # aiortc itself asked once, at the gap
    video.feed(102, 2000)  # the retransmission
    await video.tick(RENACK_S)
    assert video.nacks == [[102], [102]]
    assert video.repair.renacks == 2 and video.plis == 0


async def test_a_stalled_picture_asks_for_a_keyframe_and_skips_to_it(video: Receiver) -> None:
    video.feed(100, 1000, key=True)
    video.feed(101, 2000)
    video.feed(102, 3000)
    assert video.frames == [1000, 2000]
    # 103 (a frame of its own) is lost and stays lost: later frames wait behind it
    video.feed(104, 5000)
    video.feed(105, 6000)
    await video.tick(RENACK_S)
    assert video.plis == 0  # not stalled yet
    await video.tick(STALL_S)
    assert video.plis == 1 and video.frames == [1000, 2000]
    await video.tick(RENACK_S)
    assert video.plis == 1  # not repeated at once
    video.feed(106, 7000, key=True)  # the keyframe the PLI asked for
    video.feed(107, 8000)
    assert video.frames == [1000, 2000, 7000]  # 3000 waited for 103: dropped with it
    assert video.repair.skips == 1
    nacks = len(video.nacks)
    await video.tick(RENACK_S)
    assert len(video.nacks) == nacks  # 103 is no longer asked for
    assert 103 not in video.receiver._RTCRtpReceiver__nack_generator.missing


async def test_a_keyframe_already_behind_the_hole_is_skipped_to_without_a_pli(
    video: Receiver,
) -> None:
    video.feed(100, 1000, key=True)
    video.feed(101, 2000)
    video.feed(103, 4000, key=True)  # 102 lost; a keyframe came after it anyway
    video.feed(104, 5000)
    await video.tick(STALL_S + RENACK_S)
    assert video.plis == 0 and video.repair.skips == 1
    video.feed(105, 6000)  # aiortc's buffer hands out one frame per packet added
    video.feed(106, 7000)
    assert video.frames == [1000, 4000, 5000]


async def test_a_quiet_track_is_not_a_stall(video: Receiver) -> None:
    video.feed(100, 1000, key=True)
    video.feed(101, 2000)
    await video.tick(10 * STALL_S)  # switched off, or a paused source: nothing waits
    assert video.plis == 0 and video.nacks == [] and video.repair.skips == 0


async def test_decoded_frames_nobody_reads_are_bounded() -> None:
    # aiortc decodes into a queue without a bound whether or not anything reads the track:
    # a client that never reads a subscribed video grew by a picture per frame.
    # (a receiver's track exists once a remote description made it)
    assert not seam.bound_decoded_frames(SimpleNamespace(track=None), 3)  # type: ignore[arg-type]
    receiver: Any = SimpleNamespace(track=RemoteStreamTrack(kind="video"))
    assert seam.bound_decoded_frames(receiver, 3)
    queue = receiver.track._queue
    for frame in range(10):  # as the decoder thread hands them over, on the loop
        await queue.put(frame)
    assert queue.qsize() == 3
    await queue.put(None)  # the end of the track is never dropped
    assert [await receiver.track.recv() for _ in range(2)] == [8, 9]
    with pytest.raises(MediaStreamError):
        await receiver.track.recv()
