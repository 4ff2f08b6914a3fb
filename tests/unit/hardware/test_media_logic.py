"""Pure parts of the media path: Annex B parsing, the jitter buffer, specs, board, overlay."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.audio.devices import AudioSpec
from hardware.audio.playback import JitterBuffer
from hardware.board import classify, read_model
from hardware.camera.base import CameraLayerSpec, CameraSpec
from hardware.camera.h264 import NAL_IDR, NAL_PPS, NAL_SPS, ParameterSetKeeper, iter_nals, nal_types
from hardware.camera.overlay import draw_text, overlay_text
from hardware.errors import ConfigError, HardwareError, UnknownLayerError

SPS = b"\x67\x42\xc0\x1f\xaa"
PPS = b"\x68\xce\x3c\x80"
IDR = b"\x65\x88\x84\x00"
P = b"\x41\x9a\x00"


def test_iter_nals_handles_three_and_four_byte_start_codes() -> None:
    data = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS + b"\x00\x00\x00\x01" + IDR
    spans = list(iter_nals(data))
    assert [t for t, _, _ in spans] == [NAL_SPS, NAL_PPS, NAL_IDR]
    assert [data[s:e] for _, s, e in spans] == [SPS, PPS, IDR]


def test_parameter_sets_are_added_to_bare_keyframes() -> None:
    keeper = ParameterSetKeeper()
    bare = b"\x00\x00\x00\x01" + IDR
    assert keeper.fix(bare, True) == bare  # nothing known yet
    full = b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS + bare
    assert keeper.fix(full, True) == full
    assert nal_types(keeper.fix(bare, True)) == [NAL_SPS, NAL_PPS, NAL_IDR]
    delta = b"\x00\x00\x00\x01" + P
    assert keeper.fix(delta, False) == delta


def test_jitter_buffer_orders_fills_and_drops_late() -> None:
    buf = JitterBuffer(channels=1, max_samples=10_000)
    buf.put(100, np.full(10, 2, np.int16))
    buf.put(90, np.full(10, 1, np.int16))
    buf.put(120, np.full(5, 3, np.int16))
    out = buf.read(40)
    assert list(out) == [1] * 10 + [2] * 10 + [0] * 10 + [3] * 5 + [0] * 5
    assert buf.gap_samples == 15
    buf.put(95, np.full(10, 9, np.int16))
    assert buf.late == 1 and not buf.read(10).any()


def test_jitter_buffer_stereo_and_overflow() -> None:
    buf = JitterBuffer(channels=2, max_samples=20)
    buf.put(0, np.arange(20, dtype=np.int16))  # 10 frames
    buf.put(10, np.arange(20, 40, dtype=np.int16))
    buf.put(20, np.arange(40, 60, dtype=np.int16))  # 30 frames > 20: oldest dropped
    assert buf.overflow == 1
    assert list(buf.read(5)) == list(range(20, 30))


def test_specs_validate_with_builtin_compatible_errors() -> None:
    with pytest.raises(ConfigError):
        CameraLayerSpec("odd", 641, 360)
    with pytest.raises(ValueError):
        CameraSpec(layers=(CameraLayerSpec("a", 64, 64), CameraLayerSpec("a", 32, 32)))
    with pytest.raises(KeyError):
        CameraSpec().layer("nope")
    with pytest.raises(UnknownLayerError, match="configured layers"):
        CameraSpec().layer("nope")
    with pytest.raises(HardwareError):
        AudioSpec(period_ms=15)
    assert AudioSpec(period_ms=10).period_frames == 480
    assert CameraSpec(framerate=25).frame_interval_us == 40_000


@pytest.mark.parametrize(
    ("model", "family", "hw"),
    [
        ("Raspberry Pi 4 Model B Rev 1.4", "pi4", True),
        ("Raspberry Pi 400 Rev 1.0", "pi400", True),
        ("Raspberry Pi Compute Module 4 Rev 1.0", "cm4", True),
        ("Raspberry Pi Zero 2 W Rev 1.0", "zero2w", True),
        ("Raspberry Pi 5 Model B Rev 1.0", "pi5", False),
        ("", "other", False),
    ],
)
def test_board_classification(model: str, family: str, hw: bool) -> None:
    board = classify(model, hw_encoder_device=True)
    assert (board.family, board.hw_encoder) == (family, hw)


def test_read_model_strips_the_nul(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "model"
    path.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    assert read_model(path) == "Raspberry Pi 5 Model B Rev 1.0"
    assert read_model(tmp_path / "absent") == ""


def test_overlay_draws_the_counter_and_clock() -> None:
    text = overlay_text(123, wall_time=3661.25)
    assert text == "000123 01:01:01.250"
    luma = np.full((90, 400), 16, np.uint8)
    draw_text(luma, "8", scale=4, x=2, y=2)
    box = luma[2 : 2 + 28, 2 : 2 + 20]
    assert (box == 235).sum() == 13 * 16  # the 13 lit cells of "8", each 4x4
    assert luma[60:, :].min() == 16  # nothing drawn outside the box


def test_queued_frames_tells_paced_cards_from_file_pcms() -> None:
    from hardware.audio.devices import queued_frames

    assert queued_frames(3840, 3840) is None  # file/null PCMs: always the whole buffer
    assert queued_frames(1920, 3840) == 1920
    assert queued_frames(-32, 3840) is None  # an error code from avail()


def test_audio_level_in_dbov_as_rfc_6464_counts_it() -> None:
    import numpy as np

    from hardware.audio.capture import level_dbov

    assert level_dbov(b"") == 127
    assert level_dbov(bytes(1920)) == 127  # digital silence
    assert level_dbov(np.full(960, -32768, dtype="<i2").tobytes()) == 0  # full-scale square
    t = np.arange(960) / 48000
    sine = (0.25 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    assert level_dbov(sine) == 15  # 0.25 of full scale, RMS 3 dB below its peak
    assert level_dbov(np.full(960, 1, dtype="<i2").tobytes()) == 90  # near silence
