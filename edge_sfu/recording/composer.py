"""One composition as an FFmpeg run: the recordings placed per the layout, the audio mixed.

``build_command`` turns a plan (``layout.plan_video``) and the audio sources into one
``ffmpeg`` command line: a black canvas, each video source scaled into its cell and overlaid
while it has one, every audio source delayed to its place on the timeline and mixed.
``run`` runs it under ``nice`` (composition decodes and encodes: it must never take CPU
from live rooms) and reports progress. H.264 goes through the Pi's V4L2 encoder when the
board has one (``h264_v4l2m2m`` on ``/dev/video11``; libx264 if it fails), libx264
otherwise; WebM is VP8 and Opus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .layout import Placement, Span

log = logging.getLogger(__name__)

FPS = 15
#: The Pi's stateful V4L2 H.264 encoder.
V4L2_ENCODER_DEVICE = Path("/dev/video11")
NICE = 19
#: Audio bitrates of the two formats (bits per second).
AUDIO_BPS = {"mp4": 128_000, "webm": 96_000}
#: How often the disk is checked while FFmpeg writes (seconds).
WATCH_INTERVAL = 0.25


class ComposeError(RuntimeError):
    """FFmpeg could not make the composition."""


class OutOfSpace(ComposeError):
    """The composition was stopped at the quota or the free-space reserve."""


HARDWARE_H264, SOFTWARE_H264 = "h264_v4l2m2m", "libx264"


@dataclass(frozen=True)
class Job:
    """Everything one run needs (times in seconds on the room's timeline)."""

    output: Path
    format: str  # "mp4" or "webm"
    width: int
    height: int
    start: float
    end: float
    videos: dict[str, Path]  # recording SID -> file
    placements: list[Placement]
    audio: list[tuple[Path, Span]]

    @property
    def duration(self) -> float:
        """Length of the composition."""
        return max(0.0, self.end - self.start)


def smallest_size(job: Job) -> int:
    """Bytes the output takes at the least: its audio at a constant bitrate, and headers."""
    audio = job.duration * AUDIO_BPS[job.format] / 8 if job.audio else 0.0
    return int(audio) + 16 * 1024


def hardware_h264() -> bool:
    """Whether the board has a V4L2 memory-to-memory H.264 encoder FFmpeg can use."""
    return V4L2_ENCODER_DEVICE.exists() and os.access(V4L2_ENCODER_DEVICE, os.R_OK | os.W_OK)


def _video_graph(job: Job, starts: dict[str, float], index: dict[str, int]) -> list[str]:
    size = f"{job.width}x{job.height}"
    graph = [f"color=c=black:s={size}:r={FPS}:d={job.duration:.3f}[base0]"]
    by_source: dict[str, list[Placement]] = {}
    for p in job.placements:
        by_source.setdefault(p.key, []).append(p)
    for key, places in by_source.items():
        shift = starts[key] - job.start
        chain = f"[{index[key]}:v]setpts=PTS-STARTPTS+{shift:.3f}/TB,fps={FPS}"
        labels = "".join(f"[s{key}_{i}]" for i in range(len(places)))
        graph.append(f"{chain},split={len(places)}{labels}" if len(places) > 1 else chain + labels)
    last = "base0"
    counters: dict[str, int] = {}
    for n, p in enumerate(job.placements):
        i = counters.get(p.key, 0)
        counters[p.key] = i + 1
        a, b = p.start - job.start, p.end - job.start
        graph.append(
            f"[s{p.key}_{i}]scale={p.width}:{p.height}:force_original_aspect_ratio=decrease,"
            f"pad={p.width}:{p.height}:(ow-iw)/2:(oh-ih)/2:black,setsar=1[c{n}]"
        )
        out = f"base{n + 1}"
        graph.append(
            f"[{last}][c{n}]overlay={p.x}:{p.y}:eof_action=pass:"
            f"enable='between(t,{a:.3f},{b:.3f})'[{out}]"
        )
        last = out
    graph.append(f"[{last}]format=yuv420p[vout]")
    return graph


def _audio_graph(job: Job, first_audio: int) -> list[str]:
    graph = []
    for j, (_, span) in enumerate(job.audio):
        delay = max(0, round((span.start - job.start) * 1000))
        graph.append(
            f"[{first_audio + j}:a]aresample=48000:async=1,asetpts=PTS-STARTPTS,"
            f"adelay={delay}:all=1[a{j}]"
        )
    labels = "".join(f"[a{j}]" for j in range(len(job.audio)))
    graph.append(f"{labels}amix=inputs={len(job.audio)}:duration=longest:normalize=0[aout]")
    return graph


def h264_encoders() -> list[str]:
    """The H.264 encoders to try, in order: the board's V4L2 one first when it has one."""
    return [HARDWARE_H264, SOFTWARE_H264] if hardware_h264() else [SOFTWARE_H264]


def build_command(
    job: Job,
    starts: dict[str, float],
    ffmpeg: str = "ffmpeg",
    max_bytes: int | None = None,
    h264: str = SOFTWARE_H264,
) -> list[str]:
    """The ``ffmpeg`` argv for ``job``; ``starts`` holds each video file's first frame time;
    FFmpeg stops writing at ``max_bytes``; an MP4's video goes through ``h264``."""
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y"]
    index: dict[str, int] = {}
    for key, path in job.videos.items():
        index[key] = len(index)
        argv += ["-i", str(path)]
    for path, _ in job.audio:
        argv += ["-i", str(path)]
    graph = _video_graph(job, starts, index)
    if job.audio:
        graph += _audio_graph(job, len(index))
    argv += ["-filter_complex", ";".join(graph), "-map", "[vout]"]
    if job.audio:
        argv += ["-map", "[aout]"]
    argv += ["-t", f"{job.duration:.3f}", "-r", str(FPS)]
    if job.format == "webm":
        argv += ["-c:v", "libvpx", "-b:v", "1M", "-deadline", "realtime", "-cpu-used", "8"]
        argv += ["-c:a", "libopus", "-b:a", str(AUDIO_BPS["webm"])] if job.audio else []
    else:
        if h264 == HARDWARE_H264:
            argv += ["-c:v", HARDWARE_H264, "-b:v", "2M"]
        else:
            argv += ["-c:v", SOFTWARE_H264, "-preset", "veryfast", "-crf", "23", "-threads", "2"]
        argv += ["-c:a", "aac", "-b:a", str(AUDIO_BPS["mp4"])] if job.audio else []
        argv += ["-movflags", "+faststart"]
    if max_bytes is not None:
        argv += ["-fs", str(max_bytes)]
    # progress five times a second: short compositions still report every 10 %
    argv += ["-progress", "pipe:1", "-stats_period", "0.2", "-nostats", str(job.output)]
    return argv


async def run(
    job: Job,
    starts: dict[str, float],
    on_progress: Callable[[float], None],
    limit: tuple[int, str] | None = None,
    over_limit: Callable[[], str | None] = lambda: None,
) -> None:
    """Run FFmpeg for ``job`` at low priority; ``on_progress(fraction)`` as it goes.

    ``limit`` is (bytes the output may take, the reason it may take no more): FFmpeg stops
    there and the run fails. ``over_limit()`` is asked several times a second whether the
    disk has run out meanwhile (other files grow too): when it gives a reason, FFmpeg is
    killed and the run fails with it (``OutOfSpace`` both times). An MP4 whose hardware
    encoder fails is made again with libx264. A failed run's output is the caller's to
    remove.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise ComposeError("ffmpeg is not installed")
    encoders = h264_encoders() if job.format == "mp4" else [SOFTWARE_H264]
    for n, h264 in enumerate(encoders):
        argv = build_command(job, starts, ffmpeg, limit[0] if limit is not None else None, h264)
        try:
            await _run_once(argv, job, on_progress, limit, over_limit)
            return
        except OutOfSpace:
            raise
        except ComposeError as exc:
            if n == len(encoders) - 1:
                raise
            log.warning("composition %s: %s failed (%s), %s instead", job.output.name, h264,
                        exc, encoders[n + 1])  # fmt: skip


async def _run_once(
    argv: list[str],
    job: Job,
    on_progress: Callable[[float], None],
    limit: tuple[int, str] | None,
    over_limit: Callable[[], str | None],
) -> None:
    nice = shutil.which("nice")
    if nice is not None:
        argv = [nice, "-n", str(NICE), *argv]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors = asyncio.ensure_future(proc.stderr.read())
    stopped: list[str] = []
    watcher = asyncio.ensure_future(_watch(proc, over_limit, stopped))
    try:
        async for line in proc.stdout:
            key, _, value = line.decode(errors="replace").strip().partition("=")
            if key == "out_time_us" and value.isdigit() and job.duration > 0:
                on_progress(min(1.0, int(value) / 1e6 / job.duration))
        code = await proc.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    finally:
        watcher.cancel()
    stderr = (await errors).decode(errors="replace").strip()
    if stopped:
        raise OutOfSpace(f"the composition was stopped: {stopped[0]}")
    if code != 0:
        log.warning("composition %s failed: %s", job.output.name, stderr[-2000:])
        raise ComposeError(stderr.splitlines()[-1] if stderr else f"ffmpeg exited {code}")
    # -fs ends the output early but cleanly: a cut composition is no composition
    if limit is not None and _size(job.output) >= limit[0]:
        raise OutOfSpace(f"the composition was stopped: {limit[1]}")


async def _watch(
    proc: asyncio.subprocess.Process, over_limit: Callable[[], str | None], stopped: list[str]
) -> None:
    while proc.returncode is None:
        await asyncio.sleep(WATCH_INTERVAL)
        why = over_limit()
        if why is not None and proc.returncode is None:
            stopped.append(why)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            return


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
