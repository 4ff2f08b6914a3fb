"""Encoding cost and latency of the synthetic camera's software encoder, per layer set.

For each layer set (720p+180p, 720p+360p, 360p alone) the synthetic source runs in real time at
30 fps with libx264 (ultrafast, zerolatency, one thread), as the appliance does where it has no
hardware encoder. Reported per set:

- encode CPU seconds per second of video (thread CPU time spent scaling and encoding layers),
  and the whole process's CPU per second of video (adds pattern generation and overlay);
- capture-to-access-unit latency per layer (p50 / p95 / max, ms), against the target of one
  frame interval;
- frames delivered versus expected, to show the machine kept up.

Then the Pi 5 code path for 720p+180p: picamera2's own ``LibavH264Encoder`` per layer (with
our keyframe fix), fed by the tests' stand-in camera and stand-in libcamera.

Runs with no arguments in about 80 seconds; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hardware.camera.base import AccessUnit, CameraEvent, CameraLayerSpec, CameraSpec  # noqa: E402
from hardware.camera.synthetic import SyntheticSource  # noqa: E402

LAYER_SETS = {
    "720p+180p": (
        CameraLayerSpec("high", 1280, 720, 1_500_000),
        CameraLayerSpec("low", 320, 180, 150_000),
    ),
    "720p+360p": (
        CameraLayerSpec("high", 1280, 720, 1_500_000),
        CameraLayerSpec("mid", 640, 360, 500_000),
    ),
    "360p": (CameraLayerSpec("mid", 640, 360, 500_000),),
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class _Recorder:
    """Collects access units while ``recording`` is set (the sink runs on encoder threads)."""

    def __init__(self) -> None:
        self.units: list[AccessUnit] = []
        self.recording = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, event: CameraEvent) -> None:
        if isinstance(event, AccessUnit) and self.recording.is_set():
            with self._lock:
                self.units.append(event)


def _layer_figures(
    spec: CameraSpec, units: list[AccessUnit], video_s: float, cpu: dict[str, float] | None
) -> dict[str, dict[str, object]]:
    layers: dict[str, dict[str, object]] = {}
    for lay in spec.layers:
        mine = [u for u in units if u.layer == lay.name]
        lat = [u.latency_us / 1000 for u in mine] or [float("nan")]
        layers[lay.name] = {
            "size": f"{lay.width}x{lay.height}",
            "frames": len(mine),
            "fps": round(len(mine) / video_s, 2),
            "kbit_s": round(sum(len(u.data) for u in mine) * 8 / video_s / 1000, 1),
            "encode_cpu_per_video_s": None if cpu is None else round(cpu[lay.name] / video_s, 4),
            "latency_ms_p50": round(statistics.median(lat), 2),
            "latency_ms_p95": round(_percentile(lat, 0.95), 2),
            "latency_ms_max": round(max(lat), 2),
        }
    return layers


def _frame_figures(
    spec: CameraSpec, units: list[AccessUnit], video_s: float, cpu: dict[str, float] | None
) -> dict[str, object]:
    """Each layer's figures, and whether every layer's p95 latency fits in one frame interval."""
    layers = _layer_figures(spec, units, video_s, cpu)
    worst_p95 = max(float(v["latency_ms_p95"]) for v in layers.values())  # type: ignore[arg-type]
    interval_ms = 1000 / spec.framerate
    return {
        "frame_interval_ms": round(interval_ms, 2),
        "p95_within_one_frame": worst_p95 <= interval_ms,
        "layers": layers,
    }


def run_set(name: str, seconds: float, fps: float) -> dict[str, object]:
    """Run one layer set on the synthetic source for ``seconds`` after a 1 s warm-up."""
    spec = CameraSpec(layers=LAYER_SETS[name], framerate=fps, keyframe_interval=int(fps * 2))
    rec = _Recorder()
    src = SyntheticSource(spec, rec)
    src.start()
    time.sleep(1.0)  # codec start-up and first keyframes are not steady state
    cpu0 = {lay.name: src.stats(lay.name).cpu_seconds for lay in spec.layers}
    proc0, wall0, dropped0 = time.process_time(), time.monotonic(), src.frames_dropped
    rec.recording.set()
    time.sleep(seconds)
    rec.recording.clear()
    proc1, wall1 = time.process_time(), time.monotonic()
    cpu = {lay.name: src.stats(lay.name).cpu_seconds - cpu0[lay.name] for lay in spec.layers}
    dropped = src.frames_dropped - dropped0
    src.stop()
    video_s = wall1 - wall0
    return {
        "layer_set": name,
        "path": "synthetic source, PyAV libx264",
        "seconds": round(video_s, 2),
        "encode_cpu_per_video_s": round(sum(cpu.values()) / video_s, 4),
        "process_cpu_per_video_s": round((proc1 - proc0) / video_s, 4),
        "frames_dropped": dropped,
        **_frame_figures(spec, rec.units, video_s, cpu),
    }


def run_picamera2_set(name: str, seconds: float, fps: float) -> dict[str, object] | None:
    """The Pi 5 path: picamera2's real LibavH264Encoder (with our keyframe fix) per layer.

    Frames come from the tests' stand-in camera and stand-in libcamera; returns ``None`` where
    picamera2 is not installed.
    """
    sys.path.insert(0, str(ROOT / "tests" / "hwsim"))
    try:
        from picamera2_standin import StandInPicamera2, use_standin_libcamera
    finally:
        sys.path.pop(0)
    spec = CameraSpec(layers=LAYER_SETS[name], framerate=fps, keyframe_interval=int(fps * 2))
    rec = _Recorder()
    cams: list[StandInPicamera2] = []

    def camera() -> StandInPicamera2:
        cams.append(StandInPicamera2())
        return cams[-1]

    with use_standin_libcamera():
        try:
            from hardware.camera.picamera2_backend import Picamera2Source
        except ImportError:
            return None
        src = Picamera2Source(spec, rec, hardware_encoder=False, camera_factory=camera)
        src.start()
        time.sleep(1.0)
        clock = time.pthread_getcpuclockid(cams[0]._thread.ident)  # type: ignore[union-attr,arg-type]
        thread0, wall0 = time.clock_gettime(clock), time.monotonic()
        rec.recording.set()
        time.sleep(seconds)
        rec.recording.clear()
        thread1, wall1 = time.clock_gettime(clock), time.monotonic()
        src.close()
    video_s = wall1 - wall0
    return {
        "layer_set": name,
        "path": "picamera2 LibavH264Encoder on a stand-in camera (the Pi 5 path)",
        "seconds": round(video_s, 2),
        # The camera thread both makes the frames and runs every layer's encoder.
        "camera_thread_cpu_per_video_s": round((thread1 - thread0) / video_s, 4),
        **_frame_figures(spec, rec.units, video_s, None),
    }


def main() -> int:
    """Run every layer set; print a table, then the JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per set")
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = [run_set(name, args.seconds, args.fps) for name in LAYER_SETS]
    pi5 = run_picamera2_set("720p+180p", args.seconds, args.fps)
    for r in results:
        for lname, lay in r["layers"].items():  # type: ignore[attr-defined]
            print(
                f"{r['layer_set']:<10} {lname:<5} {lay['size']:>9} {lay['fps']:>6} fps "
                f"cpu {lay['encode_cpu_per_video_s']:.3f} s/s  latency p50 "
                f"{lay['latency_ms_p50']} p95 {lay['latency_ms_p95']} max "
                f"{lay['latency_ms_max']} ms"
            )
        print(
            f"{r['layer_set']:<10} total encode cpu {r['encode_cpu_per_video_s']:.3f} s/s, "
            f"process {r['process_cpu_per_video_s']:.3f} s/s, dropped {r['frames_dropped']}"
        )
    if pi5 is not None:
        for lname, lay in pi5["layers"].items():  # type: ignore[attr-defined]
            print(
                f"picamera2  {lname:<5} {lay['size']:>9} {lay['fps']:>6} fps latency p50 "
                f"{lay['latency_ms_p50']} p95 {lay['latency_ms_p95']} "
                f"max {lay['latency_ms_max']} ms"
            )
        print(f"picamera2  camera thread cpu {pi5['camera_thread_cpu_per_video_s']:.3f} s/s")
    summary = {
        "benchmark": "encode",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "encoder": "libx264 ultrafast zerolatency threads=1 (synthetic source)",
        "fps": args.fps,
        "cpus": os.cpu_count(),
        # Wall-clock latency includes waiting for a CPU: on a shared machine, read it with this.
        "loadavg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "results": results,
        "picamera2_software": pi5,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
