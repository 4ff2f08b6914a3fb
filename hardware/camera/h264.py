"""H.264 Annex B helpers shared by every backend."""

from __future__ import annotations

from collections.abc import Iterator

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9


def iter_nals(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield ``(nal_type, start, end)`` for each NAL unit of an Annex B buffer.

    ``start`` is the offset of the NAL header byte (after the start code); ``end`` is where the
    next start code begins (or the end of the buffer).
    """
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0:
        start = pos + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        # A four-byte start code leaves a zero byte at the end of the previous unit.
        if nxt > 0 and data[nxt - 1] == 0:
            end = nxt - 1
        if start < len(data):
            yield data[start] & 0x1F, start, end
        pos = nxt


def nal_types(data: bytes) -> list[int]:
    """NAL unit types in order."""
    return [t for t, _, _ in iter_nals(data)]


def is_idr(data: bytes) -> bool:
    """Whether the access unit holds an IDR slice."""
    return NAL_IDR in nal_types(data)


class ParameterSetKeeper:
    """Makes sure every keyframe carries SPS and PPS.

    libx264 and picamera2's encoders repeat them already; FFmpeg's ``h264_v4l2m2m`` may put them
    only in extradata or the first keyframe. A receiver joining mid-stream needs them, so a
    keyframe arriving without them gets the last ones seen prepended.
    """

    def __init__(self, extradata: bytes = b"") -> None:
        self._headers = b""
        if extradata:
            self._remember(extradata)

    def _remember(self, data: bytes) -> bool:
        sps = pps = b""
        for nal_type, start, end in iter_nals(data):
            if nal_type == NAL_SPS:
                sps = data[start:end]
            elif nal_type == NAL_PPS:
                pps = data[start:end]
            elif nal_type in (NAL_SLICE, NAL_IDR):
                break  # parameter sets come before the first slice
        if sps and pps:
            self._headers = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps
            return True
        return False

    def fix(self, data: bytes, keyframe: bool) -> bytes:
        """Return ``data``, with SPS/PPS prepended if it is a keyframe without them."""
        if not keyframe:
            return data
        if self._remember(data) or not self._headers:
            return data
        return self._headers + data
