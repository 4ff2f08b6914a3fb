"""A minimal Matroska writer that survives ``kill -9`` and a power cut, and its repair.

A recording is written as it goes, without PyAV: an EBML header, a Segment of unknown size,
Info (with a Duration to fill in later), Tracks, then one Cluster of known size per second or
so (video clusters also start at keyframes). Each cluster is handed to the kernel in one
``write`` the moment it is complete, so a killed daemon leaves a file that ends with whole
clusters (plus at most one cut one, which every Matroska reader skips); ``sync`` (fsync,
called from a worker thread every second) bounds what a power cut loses. ``finish`` turns
the file into a properly closed one: Cues, a SeekHead, the Duration and the Segment size.
``repair`` does the same for a file a dead daemon left: it cuts the last partial cluster and
finishes the file from what it reads back.

Codecs as Twilio records them: Opus in ``.mka`` (``A_OPUS``), H.264 (``V_MPEG4/ISO/AVC``,
length-prefixed NAL units with an ``avcC`` header) or VP8 (``V_VP8``) in ``.mkv``. The NAL
units themselves are the forwarded ones, byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edge_sfu.media.packet import vp8_frame_size

# Element IDs (Matroska specification).
EBML = 0x1A45DFA3
SEGMENT = 0x18538067
SEEK_HEAD, SEEK, SEEK_ID, SEEK_POSITION = 0x114D9B74, 0x4DBB, 0x53AB, 0x53AC
INFO, TIMESTAMP_SCALE, DURATION = 0x1549A966, 0x2AD7B1, 0x4489
MUXING_APP, WRITING_APP = 0x4D80, 0x5741
TRACKS, TRACK_ENTRY, TRACK_NUMBER, TRACK_UID, TRACK_TYPE = 0x1654AE6B, 0xAE, 0xD7, 0x73C5, 0x83
CODEC_ID, CODEC_PRIVATE, CODEC_DELAY, SEEK_PRE_ROLL = 0x86, 0x63A2, 0x56AA, 0x56BB
VIDEO, PIXEL_WIDTH, PIXEL_HEIGHT = 0xE0, 0xB0, 0xBA
AUDIO, SAMPLING_FREQUENCY, CHANNELS = 0xE1, 0xB5, 0x9F
CLUSTER, CLUSTER_TIMESTAMP, SIMPLE_BLOCK = 0x1F43B675, 0xE7, 0xA3
CUES, CUE_POINT, CUE_TIME, CUE_TRACK_POSITIONS = 0x1C53BB6B, 0xBB, 0xB3, 0xB7
CUE_TRACK, CUE_CLUSTER_POSITION = 0xF7, 0xF1
VOID = 0xEC

UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"
#: Room left at the start of the segment for the SeekHead written when the file is finished.
SEEK_HEAD_RESERVE = 64
#: A cluster closes after this long (ms), or at a video keyframe: a kill loses at most that.
CLUSTER_MS = 1000
APP = "edge-appliance"

OPUS_PRE_SKIP = 312


class MkvError(ValueError):
    """A file is not a Matroska file this module wrote, or cannot be repaired."""


# -- EBML encoding ---------------------------------------------------------------------------


def _id(element_id: int) -> bytes:
    return element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")


def _size(n: int, length: int | None = None) -> bytes:
    if length is None:
        length = 1
        while n >= (1 << (7 * length)) - 1:
            length += 1
    return ((1 << (7 * length)) | n).to_bytes(length, "big")


def element(element_id: int, payload: bytes) -> bytes:
    """One EBML element: ID, size, payload."""
    return _id(element_id) + _size(len(payload)) + payload


def uint(element_id: int, value: int) -> bytes:
    """An unsigned integer element."""
    return element(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _float(element_id: int, value: float) -> bytes:
    return element(element_id, struct.pack(">d", value))


def _void(total: int) -> bytes:
    """A Void element of exactly ``total`` bytes (``total`` >= 9)."""
    return _id(VOID) + _size(total - 9, 8) + b"\x00" * (total - 9)


# -- codecs ----------------------------------------------------------------------------------


def annexb_nals(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit, without start codes."""
    nals: list[bytes] = []
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0:
        start = pos + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        while nxt > 0 and end > start and data[end - 1] == 0:
            end -= 1  # a four-byte start code (or trailing zeros) of the next unit
        if end > start:
            nals.append(data[start:end])
        pos = nxt
    return nals


def length_prefixed(nals: list[bytes]) -> bytes:
    """NAL units as Matroska and MP4 store them: each after its 4-byte length."""
    return b"".join(len(nal).to_bytes(4, "big") + nal for nal in nals)


def split_length_prefixed(data: bytes) -> list[bytes]:
    """The inverse of ``length_prefixed``."""
    nals, pos = [], 0
    while pos + 4 <= len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        nals.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return nals


class _Bits:
    def __init__(self, data: bytes) -> None:
        # emulation prevention bytes (00 00 03) are not part of the syntax
        self.data = data.replace(b"\x00\x00\x03", b"\x00\x00")
        self.pos = 0

    def bit(self) -> int:
        byte = self.data[self.pos >> 3] if (self.pos >> 3) < len(self.data) else 0
        self.pos += 1
        return (byte >> (7 - ((self.pos - 1) & 7))) & 1

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0 and zeros < 32:
            zeros += 1
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        v = self.ue()
        return (v + 1) // 2 if v & 1 else -(v // 2)


def h264_size(sps: bytes) -> tuple[int, int]:
    """Picture width and height from an H.264 SPS NAL unit (header byte included)."""
    b = _Bits(sps[1:])
    profile = b.bits(8)
    b.bits(16)  # constraint flags, level
    b.ue()  # seq_parameter_set_id
    chroma = 1
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = b.ue()
        if chroma == 3:
            b.bit()
        b.ue(), b.ue(), b.bit()  # bit depths, qpprime bypass
        if b.bit():  # scaling matrices present
            for i in range(8 if chroma != 3 else 12):
                if b.bit():
                    last = nxt = 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt:
                            nxt = (last + b.se()) % 256
                        last = nxt or last
    b.ue()  # log2_max_frame_num
    poc_type = b.ue()
    if poc_type == 0:
        b.ue()
    elif poc_type == 1:
        b.bit(), b.se(), b.se()
        for _ in range(b.ue()):
            b.se()
    b.ue(), b.bit()  # max_num_ref_frames, gaps allowed
    width_mbs, height_map = b.ue() + 1, b.ue() + 1
    frame_mbs_only = b.bit()
    if not frame_mbs_only:
        b.bit()
    b.bit()  # direct_8x8_inference
    width, height = width_mbs * 16, height_map * 16 * (2 - frame_mbs_only)
    if b.bit():  # cropping
        left, right, top, bottom = b.ue(), b.ue(), b.ue(), b.ue()
        cx = 2 if chroma in (1, 2) else 1
        cy = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
        width -= (left + right) * cx
        height -= (top + bottom) * cy
    return width, height


def avc_config(sps: bytes, pps: bytes) -> bytes:
    """The ``avcC`` record (AVCDecoderConfigurationRecord) for one SPS and one PPS."""
    return (
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1])
        + len(sps).to_bytes(2, "big")
        + sps
        + b"\x01"
        + len(pps).to_bytes(2, "big")
        + pps
    )


def opus_head(channels: int = 2) -> bytes:
    """The ``OpusHead`` codec private data (RFC 7845), channel mapping family 0."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, OPUS_PRE_SKIP, 48000, 0, 0)


@dataclass(frozen=True)
class TrackInfo:
    """What the Tracks element says about the one track of a file."""

    codec: str  # "OPUS", "H264" or "VP8"
    width: int = 0
    height: int = 0
    private: bytes = b""

    @property
    def is_video(self) -> bool:
        """Whether this is a video track."""
        return self.codec != "OPUS"


def track_info(codec: str, first: bytes) -> TrackInfo | None:
    """The track description from the first frame, or None if that frame cannot start a
    file (H.264 without SPS and PPS, VP8 that is not a keyframe)."""
    if codec == "OPUS":
        return TrackInfo("OPUS", private=opus_head())
    if codec == "VP8":
        size = vp8_frame_size(first)
        return None if size is None else TrackInfo("VP8", size[0], size[1])
    nals = annexb_nals(first)
    sps = next((n for n in nals if n[0] & 0x1F == 7), None)
    pps = next((n for n in nals if n[0] & 0x1F == 8), None)
    if sps is None or pps is None or len(sps) < 4:
        return None
    try:
        width, height = h264_size(sps)
    except IndexError:
        return None
    return TrackInfo("H264", width, height, avc_config(sps, pps))


_CODEC_IDS = {"OPUS": "A_OPUS", "H264": "V_MPEG4/ISO/AVC", "VP8": "V_VP8"}


def _tracks(info: TrackInfo) -> bytes:
    entry = uint(TRACK_NUMBER, 1) + uint(TRACK_UID, 1)
    entry += uint(TRACK_TYPE, 1 if info.is_video else 2)
    entry += element(CODEC_ID, _CODEC_IDS[info.codec].encode())
    if info.private:
        entry += element(CODEC_PRIVATE, info.private)
    if info.is_video:
        entry += element(VIDEO, uint(PIXEL_WIDTH, info.width) + uint(PIXEL_HEIGHT, info.height))
    else:
        entry += uint(CODEC_DELAY, OPUS_PRE_SKIP * 1_000_000_000 // 48000)
        entry += uint(SEEK_PRE_ROLL, 80_000_000)
        entry += element(AUDIO, _float(SAMPLING_FREQUENCY, 48000.0) + uint(CHANNELS, 2))
    return element(TRACKS, element(TRACK_ENTRY, entry))


# -- writing ---------------------------------------------------------------------------------


@dataclass
class _Layout:
    """Where things are in the file (offsets from its start)."""

    segment_size_at: int = 0
    segment_data: int = 0
    seek_head_at: int = 0
    info_at: int = 0
    duration_at: int = 0
    tracks_at: int = 0
    #: (cluster offset, cluster time in ms) of clusters that start with a keyframe
    cues: list[tuple[int, int]] = field(default_factory=list)


def _head(info: TrackInfo) -> tuple[bytes, _Layout]:
    layout = _Layout()
    header = element(
        EBML,
        uint(0x4286, 1)  # EBMLVersion
        + uint(0x42F7, 1)  # EBMLReadVersion
        + uint(0x42F2, 4)  # EBMLMaxIDLength
        + uint(0x42F3, 8)  # EBMLMaxSizeLength
        + element(0x4282, b"matroska")  # DocType
        + uint(0x4287, 4)  # DocTypeVersion
        + uint(0x4285, 2),  # DocTypeReadVersion
    )
    out = bytearray(header)
    out += _id(SEGMENT)
    layout.segment_size_at = len(out)
    out += UNKNOWN_SIZE
    layout.segment_data = len(out)
    layout.seek_head_at = len(out)
    out += _void(SEEK_HEAD_RESERVE)
    layout.info_at = len(out)
    info_payload = uint(TIMESTAMP_SCALE, 1_000_000) + element(MUXING_APP, APP.encode())
    info_payload += element(WRITING_APP, APP.encode())
    duration_offset = len(_id(INFO)) + len(_size(len(info_payload) + 11)) + len(info_payload) + 3
    info_payload += _float(DURATION, 0.0)
    out += element(INFO, info_payload)
    layout.duration_at = layout.info_at + duration_offset
    layout.tracks_at = len(out)
    out += _tracks(info)
    return bytes(out), layout


class MkvWriter:
    """Writes one track to ``path`` as it goes (see the module docstring).

    ``add(data, keyframe, time_ms)`` takes frames in time order; times are milliseconds on
    the recording's timeline (for a room, since the room started). For H.264, ``data`` is an
    Annex B access unit. The file is created by the first frame that can start it.
    """

    def __init__(self, path: Path, codec: str) -> None:
        self.path = path
        self.codec = codec
        self._fd: int | None = None
        self._layout = _Layout()
        self._cluster = bytearray()
        self._cluster_ms: int | None = None
        self._cluster_key = False
        self._last_ms = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.size = 0
        self.frames = 0

    @property
    def started(self) -> bool:
        """Whether the file exists (a frame that could start it arrived)."""
        return self._fd is not None

    def add(self, data: bytes, keyframe: bool, time_ms: int) -> bool:
        """Append one frame; returns False if it was dropped (waiting for a start)."""
        if self._fd is None:
            info = track_info(self.codec, data)
            if info is None or (info.is_video and not keyframe):
                return False
            self._open(info)
        time_ms = max(time_ms, self._last_ms, 0)  # a reader needs non-decreasing times
        if (
            self._cluster_ms is None
            or time_ms - self._cluster_ms >= CLUSTER_MS
            or (keyframe and self.codec != "OPUS")
        ):
            self.flush()
            self._cluster_ms = time_ms
            self._cluster_key = keyframe
            self._cluster = bytearray(uint(CLUSTER_TIMESTAMP, time_ms))
        payload = length_prefixed(annexb_nals(data)) if self.codec == "H264" else data
        header = b"\x81" + struct.pack(">hB", time_ms - self._cluster_ms, 0x80 if keyframe else 0)
        self._cluster += element(SIMPLE_BLOCK, header + payload)
        self._last_ms = time_ms
        if self.first_ms is None:
            self.first_ms = time_ms
        self.last_ms = time_ms
        self.frames += 1
        return True

    def _open(self, info: TrackInfo) -> None:
        head, self._layout = _head(info)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._write(head)

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(data)

    def flush(self) -> None:
        """Write the open cluster out (it is complete from then on; the next frame starts
        another)."""
        if self._fd is None or self._cluster_ms is None or not self._cluster:
            return
        if self._cluster_key:
            self._layout.cues.append((self.size, self._cluster_ms))
        self._write(element(CLUSTER, bytes(self._cluster)))
        self._cluster = bytearray()
        self._cluster_ms = None

    def flush_stale(self, now_ms: int) -> None:
        """Write the open cluster out if it began ``CLUSTER_MS`` or more before ``now_ms``:
        a track that pauses (muted, or a stalled sender) loses nothing more to a crash."""
        if self._cluster_ms is not None and now_ms - self._cluster_ms >= CLUSTER_MS:
            self.flush()

    def sync(self) -> None:
        """fsync what was written (call from a worker thread: it may take a while)."""
        fd = self._fd
        if fd is not None:
            with contextlib.suppress(OSError):  # closed meanwhile
                os.fsync(fd)

    def finish(self) -> float:
        """Flush, write Cues, SeekHead, Duration and Segment size, close. Returns the
        duration in seconds (0 if nothing was written)."""
        if self._fd is None:
            return 0.0
        self.flush()
        duration = _finish(self._fd, self._layout, self.size, self._span_ms())
        os.fsync(self._fd)
        self.size = os.fstat(self._fd).st_size
        os.close(self._fd)
        self._fd = None
        return duration / 1000

    def _span_ms(self) -> int:
        if self.first_ms is None or self.last_ms is None:
            return 0
        return self.last_ms - self.first_ms + (20 if self.codec == "OPUS" else 33)

    def abandon(self) -> None:
        """Close the file as it is (it stays playable; ``repair`` finishes it later)."""
        if self._fd is not None:
            self.flush()
            os.close(self._fd)
            self._fd = None


def _finish(fd: int, layout: _Layout, end: int, span_ms: int) -> int:
    """Append Cues and patch the head of a file whose clusters end at ``end``."""
    cues = b""
    for position, time_ms in layout.cues:
        track_pos = uint(CUE_TRACK, 1) + uint(CUE_CLUSTER_POSITION, position - layout.segment_data)
        cues += element(
            CUE_POINT, uint(CUE_TIME, time_ms) + element(CUE_TRACK_POSITIONS, track_pos)
        )
    seek = b""
    targets = [(INFO, layout.info_at), (TRACKS, layout.tracks_at)]
    if cues:
        targets.append((CUES, end))
        os.pwrite(fd, element(CUES, cues), end)
        end += len(element(CUES, cues))
    os.ftruncate(fd, end)
    for target, at in targets:
        seek += element(
            SEEK, element(SEEK_ID, _id(target)) + uint(SEEK_POSITION, at - layout.segment_data)
        )
    seek_head = element(SEEK_HEAD, seek)
    os.pwrite(fd, seek_head + _void(SEEK_HEAD_RESERVE - len(seek_head)), layout.seek_head_at)
    os.pwrite(fd, struct.pack(">d", float(span_ms)), layout.duration_at)
    os.pwrite(fd, _size(end - layout.segment_data, 8), layout.segment_size_at)
    return span_ms


# -- reading and repair ----------------------------------------------------------------------


def _read_vint(data: bytes, pos: int, *, is_id: bool = False) -> tuple[int, int]:
    if pos >= len(data):
        raise MkvError("truncated element")
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(data):
        raise MkvError("bad EBML number")
    value = int.from_bytes(data[pos : pos + length], "big")
    if not is_id:
        value &= (1 << (7 * length)) - 1
        if value == (1 << (7 * length)) - 1:
            value = -1  # unknown size
    return value, pos + length


def _children(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(id, payload start, payload end) of the elements in ``data[pos:end]``; stops at a
    cut element."""
    while pos < end:
        try:
            element_id, at = _read_vint(data, pos, is_id=True)
            size, at = _read_vint(data, at)
        except MkvError:
            return
        if size < 0 or at + size > end:
            return
        yield element_id, at, at + size
        pos = at + size


@dataclass(frozen=True)
class Block:
    """One frame read back from a file."""

    time_ms: int
    keyframe: bool
    data: bytes


def read_blocks(path: Path) -> list[Block]:
    """Every complete block of a file this module wrote, in order (for checks and repair)."""
    data = path.read_bytes()
    blocks: list[Block] = []
    for cluster_at, _ in _clusters(data):
        blocks.extend(_cluster_blocks(data, cluster_at))
    return blocks


def _segment(data: bytes) -> tuple[int, int]:
    """(offset of the Segment's size, offset of its payload)."""
    header_end = _children_end(data)
    if header_end is None:
        raise MkvError("not a Matroska file")
    seg_id, at = _read_vint(data, header_end, is_id=True)
    if seg_id != SEGMENT:
        raise MkvError("not a Matroska file")
    size_at = at
    _, at = _read_vint(data, at)
    return size_at, at


def _children_end(data: bytes) -> int | None:
    for element_id, _, end in _children(data, 0, len(data)):
        if element_id == EBML:
            return end
        return None
    return None


def _clusters(data: bytes) -> Iterator[tuple[int, int]]:
    """(offset, end) of each complete cluster."""
    _, seg_data = _segment(data)
    pos = seg_data
    while pos < len(data):
        try:
            element_id, at = _read_vint(data, pos, is_id=True)
            size, at = _read_vint(data, at)
        except MkvError:
            return
        if size < 0 or at + size > len(data):
            return
        if element_id == CLUSTER:
            yield pos, at + size
        elif element_id not in (SEEK_HEAD, VOID, INFO, TRACKS, CUES):
            return
        pos = at + size


def _cluster_blocks(data: bytes, cluster_at: int) -> Iterator[Block]:
    _, at = _read_vint(data, cluster_at, is_id=True)
    size, at = _read_vint(data, at)
    base = 0
    for element_id, start, end in _children(data, at, at + size):
        if element_id == CLUSTER_TIMESTAMP:
            base = int.from_bytes(data[start:end], "big")
        elif element_id == SIMPLE_BLOCK and end - start >= 4:
            offset, flags = struct.unpack(">hB", data[start + 1 : start + 4])
            yield Block(base + offset, bool(flags & 0x80), data[start + 4 : end])


def repair(path: Path) -> float:
    """Finish a file a dead writer left: cut a partial cluster, add Cues, Duration and the
    Segment size. Returns the duration in seconds. Raises ``MkvError`` if ``path`` holds no
    Matroska head this module wrote."""
    data = path.read_bytes()
    size_at, seg_data = _segment(data)
    layout = _Layout(segment_size_at=size_at, segment_data=seg_data, seek_head_at=seg_data)
    end = seg_data
    for element_id, start, stop in _children(data, seg_data, len(data)):
        if element_id == INFO:
            layout.info_at = _header_start(data, start, INFO)
            for child, c_start, _ in _children(data, start, stop):
                if child == DURATION:
                    layout.duration_at = c_start
        elif element_id == TRACKS:
            layout.tracks_at = _header_start(data, start, TRACKS)
        elif element_id == CUES:
            break  # finished already: recompute from the clusters
        elif element_id not in (SEEK_HEAD, VOID, CLUSTER):
            break
        end = stop
    if not layout.info_at or not layout.duration_at or not layout.tracks_at:
        raise MkvError("the file has no complete head")
    first = last = None
    for cluster_at, cluster_end in _clusters(data):
        blocks = list(_cluster_blocks(data, cluster_at))
        if blocks:
            if blocks[0].keyframe:
                layout.cues.append((cluster_at, blocks[0].time_ms))
            first = blocks[0].time_ms if first is None else first
            last = blocks[-1].time_ms
        end = max(end, cluster_end)
    span = 0 if first is None or last is None else last - first
    fd = os.open(path, os.O_RDWR)
    try:
        _finish(fd, layout, end, span)
        os.fsync(fd)
    finally:
        os.close(fd)
    return span / 1000


def _header_start(data: bytes, payload_start: int, element_id: int) -> int:
    """Where the element whose payload starts at ``payload_start`` begins."""
    id_len = len(_id(element_id))
    for size_len in range(1, 9):
        at = payload_start - size_len - id_len
        if at >= 0 and int.from_bytes(data[at : at + id_len], "big") == element_id:
            return at
    raise MkvError("element header not found")


def time_span(path: Path) -> tuple[int, int]:
    """``(first block's time, duration)`` in ms of a finished file, from its head only."""
    with path.open("rb") as f:
        data = f.read(1 << 20)
    _, seg_data = _segment(data)
    duration = None
    for element_id, start, stop in _children(data, seg_data, len(data)):
        if element_id == INFO:
            for child, c_start, c_stop in _children(data, start, stop):
                if child == DURATION and c_stop - c_start == 8:
                    duration = struct.unpack(">d", data[c_start:c_stop])[0]
        elif element_id == CLUSTER:
            first = next(_cluster_blocks(data, _header_start(data, start, CLUSTER)), None)
            if first is not None and duration is not None:
                return first.time_ms, int(duration)
            break
    raise MkvError(f"{path.name}: no duration or no frame in its head")
