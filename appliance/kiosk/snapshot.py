"""A still picture from an encoded keyframe, for the admin status page.

The camera is encoded once, by the layers the call uses; a snapshot never starts another
encoder. It decodes the latest keyframe of the smallest running layer (one H.264 access unit,
SPS and PPS included) with PyAV and writes that one picture as JPEG or PNG.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hardware.camera.base import AccessUnit

#: Still formats the page offers: format name to (PyAV encoder, pixel format, MIME type).
FORMATS = {
    "jpeg": ("mjpeg", "yuvj420p", "image/jpeg"),
    "png": ("png", "rgb24", "image/png"),
}


def still_image(unit: AccessUnit, image_format: str) -> bytes:
    """Decode ``unit`` (a keyframe) and encode it as ``image_format``; blocking (a thread)."""
    # PyAV loads FFmpeg (tens of MB): only when someone asks for a picture.
    import av

    if image_format not in FORMATS:
        raise ValueError(f"no still format {image_format!r}")
    if not unit.keyframe:
        raise ValueError("a still needs a keyframe")
    encoder_name, pix_fmt, _ = FORMATS[image_format]
    decoder: Any = av.CodecContext.create("h264", "r")
    frames = list(decoder.decode(av.Packet(unit.data)))
    frames += list(decoder.decode(None))
    if not frames:
        raise LookupError("the keyframe did not decode to a picture")
    frame = frames[0]
    encoder: Any = av.CodecContext.create(encoder_name, "w")
    encoder.width, encoder.height = frame.width, frame.height
    encoder.pix_fmt = pix_fmt
    encoder.time_base = Fraction(1, 25)
    picture = frame.reformat(format=pix_fmt)
    picture.pts = 0
    packets = list(encoder.encode(picture)) + list(encoder.encode(None))
    return b"".join(bytes(p) for p in packets)


def mime_type(image_format: str) -> str:
    """The MIME type of a still format."""
    return FORMATS[image_format][2]
