"""``edge-appliance doctor``: which backend each part got and why, as a first support step.

``collect()`` returns rows; ``format_table()`` and ``to_json()`` render them. Run
``python -m hardware.doctor [--json]`` for the same report without the appliance.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from hardware.audio.devices import AudioSpec
from hardware.board import HW_ENCODER_DEVICE, BoardInfo, detect
from hardware.camera.base import CameraSpec
from hardware.camera.select import choose_camera
from hardware.errors import HardwareError

AUDIO_PARTS = ("audio in", "audio out")


@dataclass(frozen=True)
class DoctorRow:
    """One part of the unit: what backs it, whether it works, and why."""

    part: str
    backend: str
    ok: bool
    detail: str


def _board_row(board: BoardInfo) -> DoctorRow:
    model = board.model or "unknown (no /proc/device-tree/model)"
    return DoctorRow("board", board.family, True, model)


def _camera_rows(spec: CameraSpec, board: BoardInfo) -> list[DoctorRow]:
    choice = choose_camera(spec, board)
    camera = DoctorRow("camera", choice.backend, True, f"{choice.device}: {choice.reason}")
    forced_missing = choice.encoder == "hardware" and not HW_ENCODER_DEVICE.exists()
    encoder = DoctorRow(
        "encoder",
        f"{choice.encoder} ({choice.codec})",
        not (forced_missing and choice.backend == "picamera2"),
        choice.encoder_reason,
    )
    return [camera, encoder]


def _audio_row(part: str, kind: str, device: str, spec: AudioSpec) -> DoctorRow:
    try:
        from hardware.audio.devices import open_pcm
    except ImportError as exc:  # pragma: no cover - module itself has no vendor imports
        return DoctorRow(part, "alsa", False, str(exc))
    try:
        import alsaaudio  # noqa: F401
    except ImportError:
        return DoctorRow(part, "none", False, "pyalsaaudio is not installed (python3-alsaaudio)")
    try:
        open_pcm(kind, device, spec).close()
    except HardwareError as exc:
        return DoctorRow(part, f"alsa {device}", False, str(exc))
    mode = f"{spec.rate} Hz, {spec.channels} ch, {spec.period_ms} ms periods"
    return DoctorRow(part, f"alsa {device}", True, f"opens ({mode})")


def _gpio_row(kind: str) -> DoctorRow:
    from hardware.gpio.factory import make_pin_factory

    try:
        factory, reason = make_pin_factory(kind)
    except Exception as exc:  # gpiozero missing or the factory failing to load
        return DoctorRow("gpio", kind, False, f"{type(exc).__name__}: {exc}")
    backend = "mock" if factory is not None else "default"
    if factory is not None:
        factory.close()
    return DoctorRow("gpio", backend, True, reason)


def collect(
    camera: CameraSpec | None,
    audio: AudioSpec | None,
    gpio_factory: str = "auto",
    board: BoardInfo | None = None,
) -> list[DoctorRow]:
    """Probe camera, encoder, audio in, audio out, GPIO and board; never raises for a bad part.

    ``camera`` or ``audio`` ``None`` means turned off in config: reported as ``off``, not probed.
    """
    board = board or detect()
    if camera is None:
        rows = [
            DoctorRow("camera", "off", True, "turned off in config"),
            DoctorRow("encoder", "off", True, "no camera"),
        ]
    else:
        rows = _camera_rows(camera, board)
    if audio is None:
        rows += [DoctorRow(part, "off", True, "turned off in config") for part in AUDIO_PARTS]
    else:
        rows.append(_audio_row("audio in", "capture", audio.capture_device, audio))
        rows.append(_audio_row("audio out", "playback", audio.playback_device, audio))
    rows.append(_gpio_row(gpio_factory))
    rows.append(_board_row(board))
    return rows


def format_table(rows: Sequence[DoctorRow]) -> str:
    """A plain-text table: part, ok, backend, detail."""
    head = ("PART", "OK", "BACKEND", "WHY")
    body = [(r.part, "yes" if r.ok else "NO", r.backend, r.detail) for r in rows]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line[:3], widths, strict=True)) + "  " + line[3]
        for line in [head, *body]
    ]
    return "\n".join(line.rstrip() for line in lines)


def to_json(rows: Sequence[DoctorRow]) -> str:
    """The rows as a JSON array of objects (``part``, ``backend``, ``ok``, ``detail``)."""
    return json.dumps([asdict(r) for r in rows], indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hardware.doctor [--json]``; exit status 1 if any part is not ok."""
    args = list(sys.argv[1:] if argv is None else argv)
    rows = collect(CameraSpec(), AudioSpec())
    print(to_json(rows) if "--json" in args else format_table(rows))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
