"""``Compositions``: the queue of compositions and the one worker that makes them.

A composition is made from a completed room's completed recordings, one at a time, by an
FFmpeg process at the lowest priority (``composer``): a live room never waits for it.
Status goes ``enqueued`` -> ``processing`` -> ``completed`` or ``failed``, with Twilio's
callbacks to the composition's ``StatusCallback``: ``composition-enqueued``,
``composition-started``, ``composition-progress`` (``PercentageDone``, ``SecondsRemaining``,
every 10 %), ``composition-available`` and ``composition-failed``. Enabled composition hooks
compose every room that ends. A composition interrupted by a restart is made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_common.lifecycle import TaskSet

from ..callbacks import StatusCallbacks, callback_timestamp
from ..errors import InvalidParameter
from ..rooms import RoomService
from ..rooms import events as ev
from ..rooms.model import Room, utcnow
from ..rooms.recordings import Composition, CompositionHook, Recording
from ..sids import COMPOSITION, new_sid
from ..store import CompositionFilter, RecordingFilter, Store
from . import composer, mkv
from .disk import DiskBudget
from .layout import Span, matches, parse_layout, parse_resolution, plan_video

log = logging.getLogger(__name__)

#: How long a hook waits for the ended room's recordings to be finished (seconds).
RECORDINGS_WAIT = 30.0


def validate_spec(spec: dict[str, Any], resolution: str) -> None:
    """Check a composition's (or hook's) layout against its resolution; parse the layout."""
    size = parse_resolution(resolution)
    if isinstance(spec.get("video_layout"), str):
        spec["video_layout"] = parse_layout(spec["video_layout"], size)
    if not spec.get("video_layout") and not spec.get("audio_sources"):
        raise InvalidParameter("A composition needs a VideoLayout or AudioSources")


class Compositions:
    """Creates compositions and runs them, one at a time, in the background."""

    def __init__(
        self,
        store: Store,
        rooms: RoomService,
        callbacks: StatusCallbacks,
        account_sid: str,
        directory: Path,
        disk: DiskBudget,
    ) -> None:
        """``disk`` is the recordings' budget: compositions share their quota."""
        self.store = store
        self.rooms = rooms
        self.callbacks = callbacks
        self.account_sid = account_sid
        self.directory = directory
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._tasks = TaskSet("compositions")
        self._unlisten: Any = None
        #: The SID of the composition being made, if any.
        self.current: str | None = None
        self.disk = disk
        self._writing: Path | None = None  # the output FFmpeg is writing
        disk.count_running(self._writing_bytes)

    async def start(self) -> None:
        """Queue what a previous run left unfinished, follow rooms for hooks, start work."""
        for status in ("processing", "enqueued"):
            for comp in self.store.find_compositions(CompositionFilter(status=status), 1000, 0):
                self._drop_partial(comp)
                self._queue.put_nowait(comp.sid)
        self._unlisten = self.rooms.add_listener(self._on_event)
        self._tasks.spawn(self._work_forever(), name="compositions")

    def _drop_partial(self, comp: Composition) -> None:
        """Remove what an interrupted run of ``comp`` wrote (the budget counted it)."""
        path = self.directory / f"{comp.sid}.{comp.format}"
        with contextlib.suppress(FileNotFoundError):
            size = path.stat().st_size
            path.unlink()
            self.disk.remove(size)

    async def close(self) -> None:
        """Stop (a composition being made is made again at the next start)."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        await self._tasks.close()

    # -- creating --------------------------------------------------------------------

    def check(self, room: Room, spec: dict[str, Any], fmt: str, resolution: str) -> None:
        """Refuse a composition that cannot be made (Twilio's errors, HTTP 400); the layout
        in ``spec`` is replaced by its parsed regions."""
        validate_spec(spec, resolution)
        if room.in_progress:
            raise InvalidParameter("The room is in progress: compose it once it has ended")
        recordings = self._recordings(room.sid)
        if not self._videos(spec, recordings) and not self._audios(spec, recordings):
            raise InvalidParameter("No recording of the room matches the requested sources")

    def create(
        self,
        room: Room,
        spec: dict[str, Any],
        fmt: str,
        resolution: str,
        status_callback: str | None,
        status_callback_method: str,
    ) -> Composition:
        """Queue a composition (``check`` it first)."""
        now = utcnow()
        comp = Composition(
            sid=new_sid(COMPOSITION),
            room_sid=room.sid,
            status="enqueued",
            format=fmt,
            resolution=resolution,
            spec=spec,
            status_callback=status_callback,
            status_callback_method=status_callback_method,
            date_created=now,
            date_updated=now,
        )
        self.store.save_composition(comp)
        self._callback(comp, "composition-enqueued")
        self._queue.put_nowait(comp.sid)
        return comp

    def delete(self, comp: Composition) -> None:
        """Delete a composition's media; the resource stays as ``deleted``."""
        if comp.file_name:
            path = self.directory / comp.file_name
            with contextlib.suppress(FileNotFoundError):
                size = path.stat().st_size
                path.unlink()
                self.disk.remove(size)
        comp.status = "deleted"
        comp.date_deleted = comp.date_updated = utcnow()
        self.store.save_composition(comp)

    def expire(self, cutoff: datetime) -> int:
        """Delete the media of compositions made before ``cutoff`` (retention)."""
        flt = CompositionFilter(status="completed", created_before=cutoff)
        old = self.store.find_compositions(flt, 10_000, 0)
        for comp in old:
            self.delete(comp)
        return len(old)

    # -- hooks -----------------------------------------------------------------------

    def _on_event(self, event: ev.RoomEvent) -> None:
        if isinstance(event, ev.RoomCompleted):
            hooks = self.store.find_hooks(True, 1000, 0)
            if hooks:
                self._tasks.spawn(self._run_hooks(event.room, hooks))

    async def _run_hooks(self, room: Room, hooks: list[CompositionHook]) -> None:
        # the room's recorders finish after the room ends: give them a moment
        flt = RecordingFilter(room_sid=room.sid, status="processing")
        for _ in range(int(RECORDINGS_WAIT / 0.2)):
            if not self.store.find_recordings(flt, 1, 0):
                break
            await asyncio.sleep(0.2)
        stored = self.store.get_room(room.sid) or room
        for hook in hooks:
            spec = dict(hook.spec)  # its layout as written: parsed against the room each time
            try:
                self.check(stored, spec, hook.format, hook.resolution)
            except InvalidParameter as exc:
                log.info("hook %s made nothing for room %s: %s", hook.sid, room.sid, exc.message)
                params = self._params(None, "composition-hook-failed")
                params.update({"RoomSid": room.sid, "CompositionHookSid": hook.sid,
                               "ErrorMessage": exc.message})  # fmt: skip
                self.callbacks.queue(
                    hook.sid, hook.status_callback, hook.status_callback_method, params
                )
                continue
            self.create(
                stored, spec, hook.format, hook.resolution, hook.status_callback,
                hook.status_callback_method,
            )  # fmt: skip

    # -- making ----------------------------------------------------------------------

    def _recordings(self, room_sid: str) -> list[Recording]:
        flt = RecordingFilter(room_sid=room_sid, status="completed")
        return self.store.find_recordings(flt, 10_000, 0)

    @staticmethod
    def _videos(spec: dict[str, Any], recordings: list[Recording]) -> list[Recording]:
        regions = spec.get("video_layout") or {}
        return [
            r
            for r in recordings
            if r.kind == "video"
            and any(
                matches(g["video_sources"], r.track_name, r.source_sid)
                and not matches(g["video_sources_excluded"], r.track_name, r.source_sid)
                for g in regions.values()
            )
        ]

    @staticmethod
    def _audios(spec: dict[str, Any], recordings: list[Recording]) -> list[Recording]:
        wanted, excluded = spec.get("audio_sources", []), spec.get("audio_sources_excluded", [])
        return [
            r
            for r in recordings
            if r.kind == "audio"
            and matches(wanted, r.track_name, r.source_sid)
            and not matches(excluded, r.track_name, r.source_sid)
        ]

    async def _work_forever(self) -> None:
        while True:
            sid = await self._queue.get()
            comp = self.store.get_composition(sid)
            if comp is None or comp.status not in ("enqueued", "processing"):
                continue
            self.current = sid
            try:
                await self._make(comp)
            except Exception as exc:  # one composition's failure must not stop the queue
                log.exception("composition %s failed", sid)
                self._fail(comp, str(exc) or type(exc).__name__)
            finally:
                self.current = None

    async def _job(self, comp: Composition) -> tuple[composer.Job, dict[str, float]]:
        recordings = self._recordings(comp.room_sid)
        spans: dict[str, Span] = {}
        paths: dict[str, Path] = {}
        for rec in self._videos(comp.spec, recordings) + self._audios(comp.spec, recordings):
            path = self.directory / rec.file_name
            first, duration = await asyncio.to_thread(mkv.time_span, path)
            spans[rec.sid] = Span(
                rec.sid, rec.track_name, rec.source_sid, first / 1000, (first + duration) / 1000
            )
            paths[rec.sid] = path
        if not spans:
            raise composer.ComposeError("no recording matches the requested sources")
        room = self.store.get_room(comp.room_sid)
        trim = comp.spec.get("trim", True)
        start = min(s.start for s in spans.values()) if trim else 0.0
        end = max(s.end for s in spans.values())
        if not trim and room is not None and room.duration:
            end = max(end, float(room.duration))
        videos = self._videos(comp.spec, recordings)
        video_spans = [spans[r.sid] for r in videos]
        placements = plan_video(comp.spec.get("video_layout") or {}, video_spans)
        width, height = parse_resolution(comp.resolution)
        job = composer.Job(
            output=self.directory / f"{comp.sid}.{comp.format}",
            format=comp.format,
            width=width,
            height=height,
            start=start,
            end=end,
            videos={r.sid: paths[r.sid] for r in videos if any(p.key == r.sid for p in placements)},
            placements=placements,
            audio=[(paths[r.sid], spans[r.sid]) for r in self._audios(comp.spec, recordings)],
        )
        return job, {sid: span.start for sid, span in spans.items()}

    async def _make(self, comp: Composition) -> None:
        job, starts = await self._job(comp)
        left, limit = self.disk.left()
        if left < composer.smallest_size(job):  # refused before it starts
            log.warning("composition %s refused: %s", comp.sid, limit)
            self._fail(comp, f"the composition was not started: {limit}")
            return
        comp.status = "processing"
        comp.date_updated = utcnow()
        self.store.save_composition(comp)
        self._callback(comp, "composition-started")
        self._writing = job.output
        try:
            await composer.run(job, starts, _Progress(self, comp), (left, limit), self.disk.full)
        except composer.ComposeError as exc:
            with contextlib.suppress(FileNotFoundError):
                job.output.unlink()
            self._fail(comp, str(exc))
            return
        finally:
            self._writing = None
        size = job.output.stat().st_size
        self.disk.add(size)
        comp.status = "completed"
        comp.file_name = job.output.name
        comp.duration = round(job.duration)
        comp.size = size
        comp.bitrate = round(size * 8 / job.duration / 1000) if job.duration else 0
        comp.progress = 100
        comp.date_completed = comp.date_updated = utcnow()
        self.store.save_composition(comp)
        self._callback(
            comp,
            "composition-available",
            {
                "CompositionUri": f"/v1/Compositions/{comp.sid}",
                "MediaUri": f"/v1/Compositions/{comp.sid}/Media",
                "Duration": str(comp.duration),
                "Size": str(size),
            },
        )

    def _writing_bytes(self) -> int:
        path = self._writing
        if path is None:
            return 0
        try:
            return path.stat().st_size
        except OSError:
            return 0

    def _fail(self, comp: Composition, why: str) -> None:
        comp.status = "failed"
        comp.error = why[:500]
        comp.date_updated = utcnow()
        self.store.save_composition(comp)
        self._callback(comp, "composition-failed", {"ErrorMessage": comp.error})

    def _params(self, comp: Composition | None, event: str) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "StatusCallbackEvent": event,
            "Timestamp": callback_timestamp(),
        }
        if comp is not None:
            params.update({"CompositionSid": comp.sid, "RoomSid": comp.room_sid})
        return params

    def _callback(self, comp: Composition, event: str, extra: dict[str, str] | None = None) -> None:
        params = self._params(comp, event)
        params.update(extra or {})
        self.callbacks.queue(comp.sid, comp.status_callback, comp.status_callback_method, params)


class _Progress:
    """Turns FFmpeg's progress into ``composition-progress`` callbacks, every 10 %."""

    def __init__(self, owner: Compositions, comp: Composition) -> None:
        self._owner = owner
        self._comp = comp
        self._began = time.monotonic()
        self._reported = 0

    def __call__(self, fraction: float) -> None:
        percent = int(fraction * 100) // 10 * 10
        if not self._reported < percent < 100:
            return
        self._reported = percent
        elapsed = time.monotonic() - self._began
        remaining = elapsed / fraction - elapsed if fraction else 0.0
        self._comp.progress = percent
        self._owner._callback(
            self._comp,
            "composition-progress",
            {"PercentageDone": str(percent), "SecondsRemaining": str(round(remaining))},
        )
