"""aiortc's own encoders, as the Python client steers them: bitrates below aiortc's floors.

aiortc applies a receiver's REMB to its encoder clamped to the encoder's own range, whose
floors are 250 kbit/s for VP8 and 500 kbit/s for H.264, and its Opus encoder always runs at
96 kbit/s. Behind a 400 kbit/s uplink that is about all the link carries before any
packet overhead, RTCP or keyframe: the link drops what does not fit, whatever the REMB says.
Browsers go down to 30 kbit/s for video (libwebrtc's floor) and send speech at about 32.

Each VP8 or H.264 encoder of aiortc also starts over (a keyframe) whenever its target moves
by more than 10 %, so a target that follows every REMB makes a keyframe every second or
two. The client therefore takes REMB itself (``watch_bitrate_hints`` with
``keep_from_encoder``) and sets the target here when its own policy decides.
"""

from __future__ import annotations

from typing import Any, Final

from aiortc import RTCRtpSender
from aiortc.codecs import get_encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

#: The least a video encoder is asked for (libwebrtc's floor).
MIN_VIDEO_BPS: Final = 30_000
#: The most: aiortc's own ceilings are 1.5 Mbit/s (VP8) and 3 Mbit/s (H.264).
MAX_VIDEO_BPS: Final = 3_000_000

#: The sender's encoder, made on its first frame (and dropped when it stops).
_ENCODER: Final = "_RTCRtpSender__encoder"
#: The payload bytes the sender has sent (what its sender reports count).
_OCTETS: Final = "_RTCRtpSender__octet_count"
#: The encoders' targets, which their public setters clamp to aiortc's range.
_TARGETS: Final = {
    Vp8Encoder: "_Vp8Encoder__target_bitrate",
    H264Encoder: "_H264Encoder__target_bitrate",
}


def set_video_bitrate(sender: RTCRtpSender, bps: int) -> bool:
    """Set the target of ``sender``'s VP8 or H.264 encoder to ``bps`` (bounded by
    ``MIN_VIDEO_BPS`` and ``MAX_VIDEO_BPS``); False before its first frame made one.

    The encoder starts over with the new target at its next frame when it moved by more
    than 10 % (aiortc's rule), so callers change it seldom."""
    encoder: Any = getattr(sender, _ENCODER, None)
    name = _TARGETS.get(type(encoder))
    if name is None:
        return False
    setattr(encoder, name, max(MIN_VIDEO_BPS, min(int(bps), MAX_VIDEO_BPS)))
    return True


def video_bitrate(sender: RTCRtpSender) -> int | None:
    """The target of ``sender``'s video encoder, None before it has one."""
    encoder: Any = getattr(sender, _ENCODER, None)
    name = _TARGETS.get(type(encoder))
    return None if name is None else int(getattr(encoder, name))


def drop_encoder(sender: RTCRtpSender) -> None:
    """Have ``sender`` make a new encoder on its next frame.

    aiortc keeps a sender's encoder across ``replaceTrack``: a new track's timestamps start
    over, libvpx refuses a frame older than the last it encoded ("Invalid data found when
    processing input") and the sender stops sending for good. A new track also needs a
    keyframe to start with, which a new encoder makes."""
    if getattr(sender, _ENCODER, None) is not None:
        setattr(sender, _ENCODER, None)


def sent_octets(sender: RTCRtpSender) -> int:
    """The payload bytes ``sender`` has sent so far (its RTP packets', retransmissions not
    counted): what its encoder actually produced, against its target."""
    return int(getattr(sender, _OCTETS, 0))


def preset_audio_bitrate(sender: RTCRtpSender, codec: RTCRtpCodecParameters, bps: int) -> bool:
    """Give ``sender`` an Opus encoder running at ``bps`` before its first frame.

    aiortc makes the encoder on the first frame and opens it on that frame's encode, too
    late to change its rate; an encoder already there is kept. False when ``codec`` is not
    Opus or the sender has an encoder already (its rate is then whatever it was made with).
    """
    if codec.mimeType.lower() != "audio/opus" or getattr(sender, _ENCODER, None) is not None:
        return False
    encoder = get_encoder(codec)
    if not isinstance(encoder, OpusEncoder):
        return False
    encoder.codec.bit_rate = int(bps)
    setattr(sender, _ENCODER, encoder)
    return True
