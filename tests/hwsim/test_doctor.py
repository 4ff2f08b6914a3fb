"""The board report on this machine (no Pi, no camera, ALSA file PCMs)."""

from __future__ import annotations

import json
from pathlib import Path

from hardware.audio.devices import AudioSpec
from hardware.board import classify
from hardware.camera.base import CameraSpec
from hardware.doctor import collect, format_table, main, to_json


def test_rows_say_what_each_part_got_and_why(alsa_files: Path) -> None:
    audio = AudioSpec(capture_device="filecap", playback_device="nosuchcard")
    rows = collect(CameraSpec(), audio)
    by_part = {r.part: r for r in rows}
    assert [r.part for r in rows] == ["camera", "encoder", "audio in", "audio out", "gpio", "board"]
    assert (
        by_part["camera"].backend == "synthetic" and "no camera found" in by_part["camera"].detail
    )
    assert by_part["encoder"].detail == "hardware encoder: no — /dev/video11 absent"
    assert by_part["encoder"].backend == "software (libx264)"
    assert by_part["audio in"].ok and "48000 Hz" in by_part["audio in"].detail
    out = by_part["audio out"]
    assert not out.ok and "'nosuchcard'" in out.detail and "filesink" in out.detail
    assert by_part["gpio"].backend == "mock"
    table = format_table(rows)
    assert table.splitlines()[0].split() == ["PART", "OK", "BACKEND", "WHY"]
    assert "hardware encoder: no — /dev/video11 absent" in table
    assert json.loads(to_json(rows))[1]["part"] == "encoder"


def test_forced_backends_are_reported_as_forced(alsa_files: Path) -> None:
    rows = collect(CameraSpec(backend="synthetic", encoder="software"), AudioSpec("null", "null"))
    assert "forced by config" in rows[0].detail and "forced by config" in rows[1].detail


def test_pi4_board_reasons() -> None:
    board = classify("Raspberry Pi 4 Model B Rev 1.5", hw_encoder_device=False)
    assert board.family == "pi4" and not board.hw_encoder
    assert board.hw_encoder_reason() == "no — /dev/video11 absent"
    pi5 = classify("Raspberry Pi 5 Model B Rev 1.0", hw_encoder_device=True)
    assert "no supported H.264 encoder" in pi5.hw_encoder_reason()


def test_main_exit_status_and_json(alsa_files: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    status = main(["--json"])
    rows = json.loads(capsys.readouterr().out)
    assert {r["part"] for r in rows} >= {"camera", "board"}
    assert status == (0 if all(r["ok"] for r in rows) else 1)


def test_parts_turned_off_are_reported_not_probed() -> None:
    rows = collect(None, None, "mock")
    off = {r.part: r for r in rows if r.backend == "off"}
    assert set(off) == {"camera", "encoder", "audio in", "audio out"}
    assert all(r.ok for r in off.values())
