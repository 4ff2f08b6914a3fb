"""The Matroska writer: what it writes reads back unchanged, a file cut anywhere keeps every
whole cluster, and repair closes it."""

from __future__ import annotations

import fractions
import os
from pathlib import Path

import pytest

from edge_sfu.recording import mkv

# A 320x240 baseline SPS and a PPS as libx264 writes them, and a fake slice.
SPS = bytes.fromhex("6742c00cda0507e8400000030040000007a3c50aa8")
PPS = bytes.fromhex("68ce0f2c80")


def access_unit(n: int, key: bool) -> bytes:
    slice_ = bytes([0x65 if key else 0x41]) + bytes([n % 251]) * (200 + n)
    nals = [SPS, PPS, slice_] if key else [slice_]
    return b"".join(b"\x00\x00\x00\x01" + nal for nal in nals)


def write(path: Path, frames: int) -> list[tuple[bytes, bool, int]]:
    writer = mkv.MkvWriter(path, "H264")
    written = []
    for n in range(frames):
        key = n % 30 == 0
        au, t = access_unit(n, key), 5000 + n * 66
        assert writer.add(au, key, t)
        written.append((au, key, t))
    writer.abandon()
    return written


def test_sps_size_and_avcc() -> None:
    assert mkv.h264_size(SPS) == (320, 240)
    info = mkv.track_info("H264", access_unit(0, True))
    assert info is not None and (info.width, info.height) == (320, 240)
    assert info.private[:4] == bytes([1, SPS[1], SPS[2], SPS[3]])
    assert mkv.track_info("H264", access_unit(1, False)) is None  # cannot start a file
    assert mkv.annexb_nals(access_unit(0, True)) == [SPS, PPS, b"\x65" + b"\x00" * 200]


def test_frames_read_back_as_written_and_finish_closes(tmp_path: Path) -> None:
    path = tmp_path / "v.mkv"
    writer = mkv.MkvWriter(path, "H264")
    assert not writer.add(access_unit(1, False), False, 0)  # waits for a keyframe
    for n in range(90):
        writer.add(access_unit(n, n % 30 == 0), n % 30 == 0, 1000 + n * 66)
    duration = writer.finish()
    blocks = mkv.read_blocks(path)
    assert [b.time_ms for b in blocks] == [1000 + n * 66 for n in range(90)]
    assert [mkv.split_length_prefixed(b.data) for b in blocks] == [
        mkv.annexb_nals(access_unit(n, n % 30 == 0)) for n in range(90)
    ]
    assert abs(duration - 89 * 0.066) < 0.1 and writer.size == path.stat().st_size
    assert mkv.time_span(path) == (1000, 89 * 66 + 33)


@pytest.mark.parametrize("cut", [1, 100, 5000, 20000])
def test_a_cut_file_keeps_its_whole_clusters_and_repair_finishes_it(
    tmp_path: Path, cut: int
) -> None:
    path = tmp_path / "v.mkv"
    written = write(path, 150)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - cut])
    kept = mkv.read_blocks(path)
    assert kept and [b.time_ms for b in kept] == [t for _, _, t in written[: len(kept)]]
    if cut <= 5000:  # less than a cluster's bytes cut: at most that cluster is lost
        assert written[-1][2] - kept[-1].time_ms <= 2000
    span = mkv.repair(path)
    assert mkv.read_blocks(path) == kept
    assert abs(span - (kept[-1].time_ms - kept[0].time_ms) / 1000) < 0.01
    assert mkv.repair(path) == span  # repairing again changes nothing


def test_repair_refuses_what_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "x.mkv"
    path.write_bytes(os.urandom(1000))
    with pytest.raises(mkv.MkvError):
        mkv.repair(path)
    path.write_bytes(b"")
    with pytest.raises(mkv.MkvError):
        mkv.repair(path)


def test_vp8_is_written_as_v_vp8_and_decodes(tmp_path: Path) -> None:
    import av

    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 160, 120, "yuv420p"
    encoder.time_base = fractions.Fraction(1, 15)
    path = tmp_path / "v.mkv"
    writer = mkv.MkvWriter(path, "VP8")
    source = av.open("testsrc2=size=160x120:rate=15", format="lavfi")
    for n, frame in enumerate(source.decode(video=0)):
        if n == 30:
            break
        frame = frame.reformat(format="yuv420p")
        frame.pts = n
        for packet in encoder.encode(frame):
            writer.add(bytes(packet), packet.is_keyframe, n * 66)
    source.close()
    writer.finish()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "vp8"
        assert (stream.codec_context.width, stream.codec_context.height) == (160, 120)
        assert sum(1 for _ in container.decode(video=0)) == writer.frames


def test_a_paused_track_has_its_last_cluster_written_out(tmp_path: Path) -> None:
    path = tmp_path / "a.mka"
    writer = mkv.MkvWriter(path, "OPUS")
    for n in range(10):  # 200 ms of audio, then nothing (muted)
        writer.add(b"\xf8\xff\xfe", True, n * 20)
    assert mkv.read_blocks(path) == []  # the cluster is still open
    writer.flush_stale(500)
    assert mkv.read_blocks(path) == []  # not a second old yet
    writer.flush_stale(1000)
    assert [b.time_ms for b in mkv.read_blocks(path)] == [n * 20 for n in range(10)]
    writer.add(b"\xf8\xff\xfe", True, 5000)  # sound again: a new cluster
    writer.finish()
    assert [b.time_ms for b in mkv.read_blocks(path)][-2:] == [180, 5000]
