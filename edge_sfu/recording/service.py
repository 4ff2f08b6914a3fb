"""``RecordingService``: which tracks are recorded, their files, retention, callbacks.

It listens to the ``RoomService``. A track is recorded when its room's Recording Rules select
it (the last matching rule decides, as for subscribe rules), or, while a room has no rules,
when the room records participants on connect; rules changed live start and stop recordings
at once. Each recorded track gets a ``TrackRecorder`` fed by the room's media router (which
signaling owns and hands over with ``attach_media``) and a row in the store, ``processing``
until it stops, then ``completed`` (or ``failed`` when no frame ever came).

On start, recordings a dead daemon left ``processing`` are repaired (``mkv.repair``), marked
``completed`` and announced with ``recording-completed``. A recording does not start when the
recordings would pass the quota or the disk's free space would drop under the reserve
(``recording-failed``, a warning in the log); a running one stops there. Retention deletes
media older than its limit (the rows stay, ``deleted``, as Twilio keeps them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from edge_common.lifecycle import TaskSet

from ..callbacks import StatusCallbacks, room_event_params
from ..rooms import RoomService
from ..rooms import events as ev
from ..rooms.model import Participant, PublishedTrack, Room, utcnow
from ..rooms.recordings import CODECS, CONTAINERS, Composition, Recording
from ..rooms.rules import rules_allow
from ..sids import COMPOSITION, RECORDING, is_sid, new_sid
from ..store import RecordingFilter, Store
from . import mkv
from .disk import DiskBudget
from .disk import RecordingSettings as RecordingSettings  # importable from here too
from .recorder import TrackRecorder

if TYPE_CHECKING:
    from ..media import Producer, Router

log = logging.getLogger(__name__)

_PROCESSING = RecordingFilter(status="processing")

RECORDINGS_DIR = "recordings"
#: How long a track's producer may take to appear after ``track-added`` (seconds).
PRODUCER_WAIT = 5.0


#: Called with (room SID, whether the room is being recorded now) when that changes.
RecordingListener = Callable[[str, bool], None]
RouterLookup = Callable[[str], "Router | None"]


class RecordingService:
    """The recorders of the unit's live rooms; ``start()`` / ``close()`` bracket its life."""

    def __init__(
        self,
        store: Store,
        rooms: RoomService,
        callbacks: StatusCallbacks,
        account_sid: str,
        directory: Path,
        settings: RecordingSettings | None = None,
    ) -> None:
        self.store = store
        self.rooms = rooms
        self.callbacks = callbacks
        self.account_sid = account_sid
        self.directory = directory
        #: The one account of the directory, compositions included.
        self.disk = DiskBudget(directory, settings or RecordingSettings())
        self.disk.count_running(self._running_bytes)
        self._routers: RouterLookup = lambda _sid: None
        self._recorders: dict[str, tuple[Recording, TrackRecorder]] = {}  # by track SID
        self._listeners: list[RecordingListener] = []
        self._finishing: dict[str, int] = {}  # stops under way, by room SID
        self._refused: set[str] = set()  # tracks refused for lack of space: once is enough
        self._tasks = TaskSet("recordings")
        # stops are awaited, never cancelled, at close: a cancelled stop leaves a file to repair
        self._stopping: set[asyncio.Task[None]] = set()
        self._unlisten: Callable[[], None] | None = None
        #: What else retention deletes (compositions): called with the cut-off date.
        self.also_expire: list[Callable[[datetime], int]] = []

    @property
    def settings(self) -> RecordingSettings:
        """The disk limits and retention (the budget's, which compositions share)."""
        return self.disk.settings

    @settings.setter
    def settings(self, value: RecordingSettings) -> None:
        self.disk.settings = value

    # -- wiring ----------------------------------------------------------------------

    def attach_media(self, routers: RouterLookup) -> None:
        """How to find a live room's media router (signaling owns them)."""
        self._routers = routers

    def add_listener(self, listener: RecordingListener) -> Callable[[], None]:
        """Tell ``listener`` when a room starts or stops being recorded."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def is_recording(self, room_sid: str) -> bool:
        """Whether some track of the room is being recorded now."""
        return any(rec.room_sid == room_sid for rec, _ in self._recorders.values())

    def path(self, recording: Recording) -> Path:
        """Where a recording's media is."""
        return self.directory / recording.file_name

    def media_path(self, sid: str) -> Path | None:
        """The file of a completed recording or composition, by SID; None otherwise."""
        item: Recording | Composition | None = None
        if is_sid(sid, RECORDING):
            item = self.store.get_recording(sid)
        elif is_sid(sid, COMPOSITION):
            item = self.store.get_composition(sid)
        if item is None or item.status != "completed" or not item.file_name:
            return None
        return self.directory / item.file_name

    # -- lifetime --------------------------------------------------------------------

    async def start(self) -> None:
        """Finish what a dead daemon left, then follow the rooms and run retention."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        await self._recover()
        await self.disk.scan()
        if self._unlisten is None:
            self._unlisten = self.rooms.add_listener(self._on_event)
        self._tasks.spawn(self._retention_forever(), name="recording-retention")

    async def close(self) -> None:
        """Stop listening and finish every recording."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        await self._tasks.close()
        await asyncio.gather(*self._stopping, *(self._stop(sid) for sid in list(self._recorders)))

    async def _recover(self) -> None:
        for rec in self.store.find_recordings(_PROCESSING, 10_000, 0):
            path = self.path(rec)
            try:
                duration = await asyncio.to_thread(mkv.repair, path)
            except (OSError, mkv.MkvError) as exc:
                log.warning("recording %s could not be recovered: %s", rec.sid, exc)
                self._finish_row(rec, "failed", 0, 0)
                continue
            log.info("recording %s was in progress at the last shutdown: closed", rec.sid)
            self._finish_row(rec, "completed", duration, path.stat().st_size)

    # -- room events -----------------------------------------------------------------

    def _on_event(self, event: ev.RoomEvent) -> None:
        match event:
            case ev.TrackUnpublished(track=track):
                self._refused.discard(track.sid)
                if track.sid in self._recorders:
                    self._stop_later(track.sid)
            case ev.TrackPublished(room=room) | ev.RecordingRulesChanged(room=room):
                self._tasks.spawn(self.reconcile(room.sid))
            case ev.RoomCompleted(room=room):
                for sid, (rec, _) in list(self._recorders.items()):
                    if rec.room_sid == room.sid:
                        self._stop_later(sid)
            case _:
                pass

    def wanted(self, room: Room, participant: Participant, track: PublishedTrack) -> bool:
        """Whether ``track`` is to be recorded now (Twilio's rules)."""
        if track.kind not in ("audio", "video"):
            return False
        if room.recording_rules:
            return rules_allow(room.recording_rules, participant.identity, track)
        return room.settings.record_participants_on_connect

    async def reconcile(self, room_sid: str) -> None:
        """Start and stop the room's recorders as its rules say."""
        room = self.rooms.live_room(room_sid)
        if room is None:
            return
        wanted: dict[str, tuple[Participant, PublishedTrack]] = {
            track.sid: (participant, track)
            for participant in room.participants.values()
            for track in participant.published.values()
            if self.wanted(room, participant, track)
        }
        for sid, (rec, _) in list(self._recorders.items()):
            if rec.room_sid == room_sid and sid not in wanted:
                await self._stop(sid)
        for sid, (participant, track) in wanted.items():
            if sid not in self._recorders and sid not in self._refused:
                await self._start(room, participant, track)

    # -- one recording ---------------------------------------------------------------

    async def _producer(self, room_sid: str, track_sid: str) -> tuple[Router, Producer] | None:
        deadline = time.monotonic() + PRODUCER_WAIT
        while time.monotonic() < deadline:
            router = self._routers(room_sid)
            producer = router.producers.get(track_sid) if router is not None else None
            if router is not None and producer is not None and not producer.closed:
                return router, producer
            if self.rooms.track(track_sid) is None:
                return None
            await asyncio.sleep(0.05)
        return None

    async def _start(self, room: Room, participant: Participant, track: PublishedTrack) -> None:
        found = await self._producer(room.sid, track.sid)
        if found is None or track.sid in self._recorders or self.rooms.track(track.sid) is None:
            return
        router, producer = found
        codec_name = producer.codec.name
        now = utcnow()
        sid = new_sid(RECORDING)
        rec = Recording(
            sid=sid,
            room_sid=room.sid,
            participant_sid=participant.sid,
            source_sid=track.sid,
            track_name=track.name,
            kind=track.kind,
            codec=CODECS.get(codec_name, codec_name),
            container_format=CONTAINERS[track.kind],
            status="processing",
            file_name=f"{sid}.{CONTAINERS[track.kind]}",
            date_created=now,
            date_updated=now,
        )
        full = self.disk.full()
        if full:
            self._refused.add(track.sid)
            rec.status = "failed"
            self.store.save_recording(rec)
            log.warning("recording of track %s refused: %s", track.sid, full)
            self._callback("recording-failed", rec, {"FailureReason": full})
            return
        recorder = TrackRecorder(
            self.path(rec),
            codec_name,
            room.date_created.timestamp(),
            on_first_frame=lambda offset: self._first_frame(rec, offset),
            on_tick=self._tick,
        )
        was_recording = self.is_recording(room.sid)
        self._recorders[track.sid] = (rec, recorder)
        self.store.save_recording(rec)
        recorder.start(router, producer)
        self._callback("recording-started", rec)
        if not was_recording:
            self._announce(room.sid, True)

    def _first_frame(self, rec: Recording, offset_ms: int) -> None:
        rec.offset = offset_ms
        rec.date_updated = utcnow()
        self.store.save_recording(rec)

    def _tick(self, recorder: TrackRecorder) -> None:
        full = self.disk.full()
        if full:
            for sid, (rec, other) in list(self._recorders.items()):
                if other is recorder:
                    log.warning("recording %s stopped: %s", rec.sid, full)
                    self._stop_later(sid)

    def _stop_later(self, track_sid: str) -> None:
        task = asyncio.get_running_loop().create_task(self._stop(track_sid))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _stop(self, track_sid: str) -> None:
        entry = self._recorders.pop(track_sid, None)
        if entry is None:
            return
        rec, recorder = entry
        self._finishing[rec.room_sid] = self._finishing.get(rec.room_sid, 0) + 1
        try:
            duration, size = await recorder.stop()
        except OSError as exc:
            log.warning("recording %s could not be finished: %s", rec.sid, exc)
            duration, size = 0.0, 0
        finally:
            self._finishing[rec.room_sid] -= 1
            if not self._finishing[rec.room_sid]:
                del self._finishing[rec.room_sid]
        self.disk.add(size)
        if recorder.writer.frames:
            self._finish_row(rec, "completed", duration, size)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.path(rec).unlink()
            self._finish_row(rec, "failed", 0, 0)
        if not self.is_recording(rec.room_sid) and rec.room_sid not in self._finishing:
            self._announce(rec.room_sid, False)

    def _finish_row(self, rec: Recording, status: str, duration: float, size: int) -> None:
        rec.status = "completed" if status == "completed" else "failed"
        rec.duration = round(duration)
        rec.size = size
        rec.date_updated = utcnow()
        self.store.save_recording(rec)
        extra = {"RecordingDuration": str(rec.duration), "RecordingSize": str(size)}
        self._callback(f"recording-{rec.status}", rec, extra)

    def _announce(self, room_sid: str, recording: bool) -> None:
        for listener in list(self._listeners):
            try:
                listener(room_sid, recording)
            except Exception:  # a broken listener must not stop a recording
                log.exception("recording listener failed")

    # -- disk ------------------------------------------------------------------------

    def _running_bytes(self) -> int:
        return sum(recorder.size for _, recorder in self._recorders.values())

    def delete_media(self, rec: Recording) -> None:
        """Delete a recording's media (a download already open keeps reading its file)."""
        if rec.sid in {r.sid for r, _ in self._recorders.values()}:
            return  # still recording: nothing to delete yet
        path = self.path(rec)
        with contextlib.suppress(FileNotFoundError):
            size = path.stat().st_size
            path.unlink()
            self.disk.remove(size)
        rec.status = "deleted"
        rec.date_deleted = rec.date_updated = utcnow()
        self.store.save_recording(rec)

    def apply_retention(self) -> int:
        """Delete media past the retention limit; returns how many were deleted."""
        days = self.settings.retention_days
        if days <= 0:
            return 0
        cutoff = utcnow() - timedelta(days=days)
        old = self.store.recordings_older_than(cutoff)
        for rec in old:
            self.delete_media(rec)
        return len(old) + sum(expire(cutoff) for expire in self.also_expire)

    async def _retention_forever(self) -> None:
        while True:
            try:
                deleted = self.apply_retention()
                if deleted:
                    log.info("retention deleted the media of %d recordings", deleted)
            except Exception:  # retention must not stop for one bad row
                log.exception("recording retention failed")
            await asyncio.sleep(self.settings.retention_interval)

    # -- callbacks -------------------------------------------------------------------

    def _callback(self, name: str, rec: Recording, extra: dict[str, str] | None = None) -> None:
        room = self.rooms.live_room(rec.room_sid) or self.store.get_room(rec.room_sid)
        if room is None:
            return
        params = room_event_params(self.account_sid, room, name)
        participant = room.participants.get(rec.participant_sid) or self.store.get_participant(
            room.sid, rec.participant_sid
        )
        params.update(
            {
                "RecordingSid": rec.sid,
                "RecordingUri": f"/v1/Recordings/{rec.sid}",
                "Container": rec.container_format,
                "Codec": rec.codec,
                "SourceSid": rec.source_sid,
                "TrackName": rec.track_name,
                "ParticipantSid": rec.participant_sid,
                "OffsetFromTwilioVideoEpoch": str(rec.offset),
                "MediaUri": f"/v1/Recordings/{rec.sid}/Media",
            }
        )
        if participant is not None:
            params["ParticipantIdentity"] = participant.identity
        params.update(extra or {})
        settings = room.settings
        self.callbacks.queue(
            room.sid, settings.status_callback, settings.status_callback_method, params
        )
