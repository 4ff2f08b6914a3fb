"""The Python client's video budget: REMB to an encoder target and a picture size, and the
adapted track on a real aiortc sender with its real encoder (no network)."""

from __future__ import annotations

import fractions
from collections.abc import AsyncIterator

import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.codecs import get_capabilities
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtcpPsfbPacket, pack_remb_fci
from av import VideoFrame

from edge_sfu.client.uplink import (
    OUTPUT_WINDOW_S,
    RAISE_HOLD_S,
    START_BPS,
    AdaptedVideoTrack,
    VideoBudget,
)
from edge_sfu.media import seam


@pytest.fixture
async def pc() -> AsyncIterator[RTCPeerConnection]:
    """A peer connection of aiortc's own, closed after the test (no network)."""
    connection = RTCPeerConnection()
    yield connection
    await connection.close()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_lower_remb_is_taken_at_once_with_headroom():
    budget = VideoBudget(Clock())
    assert budget.target_bps == START_BPS
    assert budget.hint(200_000)
    assert budget.target_bps == 170_000
    # a change under 10 % is not worth a new encoder (each one starts with a keyframe)
    assert not budget.hint(195_000)
    assert budget.target_bps == 170_000


def test_a_higher_remb_is_taken_once_it_held():
    clock = Clock()
    budget = VideoBudget(clock)
    budget.hint(200_000)
    for _ in range(int(RAISE_HOLD_S * 10) - 1):
        clock.now += 0.1
        assert not budget.hint(400_000)
    clock.now += 0.3
    assert budget.hint(400_000)
    assert budget.target_bps == 340_000
    # an increase interrupted starts its hold again
    clock.now += 1.0
    budget.hint(600_000)
    clock.now += 1.0
    budget.hint(340_000 / 0.85)
    clock.now += 1.5
    assert not budget.hint(600_000)
    assert budget.target_bps == 340_000


def test_the_floor_is_libwebrtcs_not_aiortcs():
    budget = VideoBudget(Clock())
    budget.hint(10_000)
    assert budget.target_bps == seam.MIN_VIDEO_BPS == 30_000
    budget.hint(-5)
    assert budget.target_bps == 30_000


def sending(budget: VideoBudget, clock: Clock, bps: int) -> None:
    """The encoder sent ``bps`` over the whole window."""
    for _ in range(int(OUTPUT_WINDOW_S * 10) + 1):
        clock.now += 0.1
        octets = budget._sent[-1][1] if budget._sent else 0
        budget.on_sent(octets + bps // 80)


def test_the_picture_halves_as_the_target_falls_and_grows_back_with_a_margin():
    clock = Clock()
    budget = VideoBudget(clock)
    assert budget.output_bps is None
    assert budget.size(640, 480, 30) == (640, 480)  # 300 kbit/s carries 640x480 at 30
    sending(budget, clock, 300_000)  # a busy picture fills its target
    assert budget.output_bps == 300_000
    budget.hint(200_000)  # 170 kbit/s
    assert budget.size(640, 480, 30) == (320, 240)
    budget.hint(40_000)  # 34 kbit/s
    assert budget.size(640, 480, 30) == (160, 120)
    # 80 kbit/s would carry 320x240 (75) but not with the margin to grow back (97.5)
    sending(budget, clock, 34_000)
    clock.now += 10
    budget.hint(94_200)
    budget.hint(94_200)
    clock.now += RAISE_HOLD_S + 0.1
    budget.hint(94_200)
    assert budget.target_bps == 80_070
    assert budget.size(640, 480, 30) == (160, 120)
    # at a lower frame rate the same target carries more pixels
    assert budget.size(640, 480, 15) == (320, 240)
    # odd sources give even sizes
    assert budget.size(641, 481, 30) == (320, 240)


def test_an_easy_picture_under_its_target_keeps_its_size():
    clock = Clock()
    budget = VideoBudget(clock)
    budget.hint(50_000)  # 42.5 kbit/s: short for 320x240 at 30 (75) by the rule of thumb
    assert budget.size(320, 240, 30) == (320, 240)  # nothing measured yet: kept
    sending(budget, clock, 17_000)  # a test pattern: well under its target
    assert budget.size(320, 240, 30) == (320, 240)
    # once the encoder fills the target, the picture gives
    sending(budget, clock, 40_000)
    assert budget.size(320, 240, 30) == (160, 120)
    # a sender whose count starts over is measured afresh
    budget.on_sent(0)
    assert budget.output_bps is None


class Frames(MediaStreamTrack):
    kind = "video"

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.size = (width, height)
        self.count = 0

    async def recv(self) -> VideoFrame:
        width, height = self.size
        rng = np.random.default_rng(self.count)
        frame = VideoFrame.from_ndarray(
            rng.integers(0, 255, (height, width, 3), dtype=np.uint8), format="rgb24"
        )
        frame.pts, frame.time_base = self.count * 3000, fractions.Fraction(1, 90_000)
        self.count += 1
        return frame


async def test_the_adapted_track_scales_and_sets_the_encoder_below_aiortcs_floor(
    pc: RTCPeerConnection,
) -> None:
    sender = pc.addTransceiver("video", direction="sendonly").sender
    source = Frames(640, 480)
    track = AdaptedVideoTrack(source, VideoBudget(Clock()))
    track.sender = sender
    frame = await track.recv()
    assert (frame.width, frame.height) == (640, 480)
    assert seam.video_bitrate(sender) is None  # aiortc makes its encoder on a frame
    # the encoder aiortc would make, as it does on the first frame
    encoder = Vp8Encoder()
    sender._RTCRtpSender__encoder = encoder
    track.budget.hint(60_000)  # 51 kbit/s: aiortc itself would clamp to 250
    frame = await track.recv()
    assert (frame.width, frame.height) == (640, 480)  # the encoder not yet held by it
    # the encoder has been sending 300 kbit/s (its count, on the sender)
    clock = track.budget._clock
    clock.now += OUTPUT_WINDOW_S
    sender._RTCRtpSender__octet_count = int(300_000 * OUTPUT_WINDOW_S / 8)
    frame = await track.recv()
    assert (frame.width, frame.height) == (160, 120)
    assert frame.pts == (source.count - 1) * 3000
    assert seam.video_bitrate(sender) == 51_000
    encoder.encode(frame)
    assert encoder.codec is not None and encoder.codec.bit_rate == 51_000
    track.stop()
    assert source.readyState == "ended"


async def test_remb_reaches_the_budget_and_not_aiortcs_encoder(pc: RTCPeerConnection) -> None:
    sender = pc.addTransceiver("video", direction="sendonly").sender
    encoder = Vp8Encoder()
    sender._RTCRtpSender__encoder = encoder
    seen: list[int] = []
    seam.watch_bitrate_hints(sender, seen.append, keep_from_encoder=True)
    remb = RtcpPsfbPacket(fmt=15, ssrc=1, media_ssrc=0, fci=pack_remb_fci(100_000, [sender._ssrc]))
    await sender._handle_rtcp_packet(remb)
    assert seen == [100_000]
    assert encoder.target_bitrate == 500_000  # aiortc's own start, untouched


async def test_opus_is_made_at_speech_rate_before_the_first_frame(pc: RTCPeerConnection) -> None:
    sender = pc.addTransceiver("audio", direction="sendonly").sender
    opus = next(c for c in get_capabilities("audio").codecs if c.mimeType == "audio/opus")
    codec = RTCRtpCodecParameters(
        mimeType=opus.mimeType,
        clockRate=opus.clockRate,
        channels=opus.channels,
        payloadType=111,
    )
    assert seam.preset_audio_bitrate(sender, codec, 32_000)
    encoder = sender._RTCRtpSender__encoder
    assert encoder.codec.bit_rate == 32_000
    # an encoder already there is kept
    assert not seam.preset_audio_bitrate(sender, codec, 16_000)
    assert encoder.codec.bit_rate == 32_000
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)
    assert not seam.preset_audio_bitrate(pc.addTransceiver("audio").sender, vp8, 32_000)


@pytest.mark.parametrize("bps", [1, 10_000_000])
def test_set_video_bitrate_bounds(bps):
    class Sender:
        _RTCRtpSender__encoder = Vp8Encoder()

    sender = Sender()
    assert seam.set_video_bitrate(sender, bps)  # type: ignore[arg-type]
    assert seam.video_bitrate(sender) in (seam.MIN_VIDEO_BPS, 3_000_000)  # type: ignore[arg-type]


async def test_a_dropped_encoder_is_made_anew_on_the_next_frame(pc: RTCPeerConnection) -> None:
    # aiortc keeps a sender's encoder across replaceTrack, and a new track's timestamps start
    # over: libvpx then refuses a frame and the sender stops (test_churn shows it end to end)
    sender = pc.addTransceiver("video", direction="sendonly").sender
    sender._RTCRtpSender__encoder = Vp8Encoder()
    seam.drop_encoder(sender)
    assert sender._RTCRtpSender__encoder is None
    seam.drop_encoder(sender)  # none to drop: nothing happens
    assert sender._RTCRtpSender__encoder is None
    assert seam.sent_octets(sender) == 0
