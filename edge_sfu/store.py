"""Room and participant history, recordings, guest names, issued identities and the callback
outbox, in SQLite.

One database file in the data directory, in WAL mode with ``synchronous=NORMAL``: a commit
is an append to the WAL without an fsync, so the small writes the control plane makes run
inline on the event loop in well under a millisecond, and a crash of the daemon loses
nothing (the WAL is in the page cache and the kernel writes it). Only a power cut can lose
the last few commits, never corrupt the file. Every query is parameterized.

The schema carries a version (``PRAGMA user_version``); ``_MIGRATIONS[n]`` brings a
database from version ``n`` to ``n + 1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hmac
import json
import logging
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_common.lifecycle import TaskSet

from .rooms.model import Participant, Room, RoomSettings
from .rooms.recordings import Composition, CompositionHook, Recording

log = logging.getLogger(__name__)

DB_FILE = "sfu.sqlite3"

_MIGRATIONS: list[str] = [
    """
    CREATE TABLE rooms (
        sid TEXT PRIMARY KEY,
        unique_name TEXT NOT NULL,
        status TEXT NOT NULL,
        settings TEXT NOT NULL,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL,
        end_time TEXT,
        duration INTEGER,
        recording_rules TEXT NOT NULL,
        rules_updated TEXT
    );
    CREATE INDEX rooms_by_created ON rooms (date_created, sid);
    CREATE INDEX rooms_by_name ON rooms (unique_name);
    CREATE INDEX rooms_by_status ON rooms (status);
    CREATE TABLE participants (
        sid TEXT PRIMARY KEY,
        room_sid TEXT NOT NULL REFERENCES rooms (sid),
        identity TEXT NOT NULL,
        status TEXT NOT NULL,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL,
        start_time TEXT NOT NULL,
        end_time TEXT,
        duration INTEGER,
        subscribe_rules TEXT NOT NULL,
        rules_updated TEXT
    );
    CREATE INDEX participants_by_room ON participants (room_sid, date_created, sid);
    CREATE TABLE redemptions (
        invite_id TEXT NOT NULL,
        identity TEXT NOT NULL,
        room TEXT NOT NULL,
        date_created TEXT NOT NULL,
        PRIMARY KEY (invite_id, identity)
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        room_sid TEXT NOT NULL,
        url TEXT NOT NULL,
        method TEXT NOT NULL,
        params TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL
    );
    CREATE INDEX outbox_by_room ON outbox (room_sid, id);
    CREATE TABLE sequences (
        room_sid TEXT PRIMARY KEY,
        next INTEGER NOT NULL
    );
    """,
    # Guest names are a registry of their own: one name, one guest key, unit-wide; and the
    # names issued otherwise are recorded so that no guest can take them.
    """
    DROP TABLE redemptions;
    CREATE TABLE guests (
        identity TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL,
        invite_id TEXT NOT NULL,
        room TEXT NOT NULL,
        expires REAL NOT NULL,
        date_created TEXT NOT NULL
    );
    CREATE INDEX guests_by_invite ON guests (invite_id);
    CREATE TABLE issued (
        identity TEXT PRIMARY KEY,
        date_created TEXT NOT NULL
    );
    """,
    # A callback is fixed when queued: every delivery of it carries the same signature and
    # idempotency token, so a receiver can drop the duplicates at-least-once delivery makes.
    """
    ALTER TABLE outbox ADD COLUMN signature TEXT NOT NULL DEFAULT '';
    ALTER TABLE outbox ADD COLUMN idempotency_token TEXT NOT NULL DEFAULT '';
    """,
    # Invites the unit made are listed (never the invite itself: it is a credential) so an
    # admin can revoke one; a revoked invite redeems nothing, its guests keep their names.
    """
    CREATE TABLE invites (
        invite_id TEXT PRIMARY KEY,
        room TEXT NOT NULL,
        guests INTEGER NOT NULL,
        expires REAL NOT NULL,
        date_created TEXT NOT NULL,
        revoked TEXT
    );
    """,
    # Recordings (one row per recorded track, its file in the recordings directory),
    # compositions and composition hooks; the fields a composition is made from are JSON.
    """
    CREATE TABLE recordings (
        sid TEXT PRIMARY KEY,
        room_sid TEXT NOT NULL,
        participant_sid TEXT NOT NULL,
        source_sid TEXT NOT NULL,
        track_name TEXT NOT NULL,
        kind TEXT NOT NULL,
        codec TEXT NOT NULL,
        container_format TEXT NOT NULL,
        status TEXT NOT NULL,
        file_name TEXT NOT NULL,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL,
        "offset" INTEGER NOT NULL,
        duration INTEGER,
        size INTEGER NOT NULL,
        date_deleted TEXT
    );
    CREATE INDEX recordings_by_created ON recordings (date_created, sid);
    CREATE INDEX recordings_by_room ON recordings (room_sid);
    CREATE INDEX recordings_by_status ON recordings (status);
    CREATE TABLE compositions (
        sid TEXT PRIMARY KEY,
        room_sid TEXT NOT NULL,
        status TEXT NOT NULL,
        format TEXT NOT NULL,
        resolution TEXT NOT NULL,
        spec TEXT NOT NULL,
        status_callback TEXT,
        status_callback_method TEXT NOT NULL,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL,
        file_name TEXT NOT NULL,
        duration INTEGER NOT NULL,
        size INTEGER NOT NULL,
        bitrate INTEGER NOT NULL,
        progress INTEGER NOT NULL,
        date_completed TEXT,
        date_deleted TEXT,
        error TEXT NOT NULL
    );
    CREATE INDEX compositions_by_created ON compositions (date_created, sid);
    CREATE TABLE composition_hooks (
        sid TEXT PRIMARY KEY,
        friendly_name TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        format TEXT NOT NULL,
        resolution TEXT NOT NULL,
        spec TEXT NOT NULL,
        status_callback TEXT,
        status_callback_method TEXT NOT NULL,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL,
        extra TEXT NOT NULL
    );
    """,
    # Codec names as Twilio's Recording resource spells them (OPUS, VP8, H264, PCMU); the
    # first recordings stored them in lower case.
    """
    UPDATE recordings SET codec = upper(codec) WHERE codec != upper(codec);
    """,
]


def fmt_time(value: datetime | None) -> str | None:
    """A UTC time as Twilio prints it (``2026-11-21T13:05:00Z``)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is C code; strftime/strptime showed up at the top of the control-plane profile.
    return value.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: str | None) -> datetime | None:
    """The inverse of ``fmt_time``."""
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class RoomFilter:
    """Filters of ``GET /v1/Rooms`` (all optional; dates compare with ``date_created``)."""

    status: str | None = None
    unique_name: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class ParticipantFilter:
    """Filters of ``GET /v1/Rooms/{RoomSid}/Participants``."""

    status: str | None = None
    identity: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class RecordingFilter:
    """Filters of ``GET /v1/Recordings`` (``GroupingSid`` gives the room and participant)."""

    status: str | None = None
    source_sid: str | None = None
    participant_sid: str | None = None
    room_sid: str | None = None
    kind: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class CompositionFilter:
    """Filters of ``GET /v1/Compositions``."""

    status: str | None = None
    room_sid: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class GuestResult(enum.Enum):
    """What ``Store.claim_guest`` decided."""

    NEW = "new"  # the name is now this guest's
    AGAIN = "again"  # the same guest (same key) redeems its own name again
    TAKEN = "taken"  # another guest holds the name
    RESERVED = "reserved"  # the name was issued or seen otherwise
    FULL = "full"  # the invite admitted as many guests as it may


@dataclass(frozen=True)
class IssuedInvite:
    """An invite the unit made, as the admin page lists it."""

    invite_id: str
    room: str
    guests: int
    #: Unix time.
    expires: float
    date_created: str
    #: When it was revoked (ISO 8601), or ``None``.
    revoked: str | None
    #: How many different guests it admitted so far.
    used: int = 0


@dataclass(frozen=True)
class GuestClaim:
    """A guest asking for a name through an invite."""

    identity: str
    key_hash: str
    invite_id: str
    room: str
    limit: int
    #: Until when (Unix time) the name stays this guest's: the invite's expiry plus the
    #: lifetime of the last token it can give.
    expires: float


@dataclass(frozen=True)
class NewCallback:
    """A status callback to queue, complete: every delivery sends exactly this."""

    room_sid: str
    url: str
    method: str
    params: dict[str, str]
    #: ``X-Twilio-Signature``, computed once (with the auth token of the moment).
    signature: str
    #: ``I-Twilio-Idempotency-Token``: the same on every delivery of this callback.
    idempotency_token: str
    #: When to make the first attempt (Unix time).
    at: float


@dataclass(frozen=True)
class OutboxItem:
    """One status callback waiting to be delivered."""

    id: int
    room_sid: str
    url: str
    method: str
    params: dict[str, str]
    attempts: int
    next_attempt: float
    signature: str = ""  # empty in rows queued by a version that did not store it
    idempotency_token: str = ""


class Store:
    """The control plane's SQLite database. Not thread-safe: use it from the event loop."""

    def __init__(self, path: Path) -> None:
        """Open (creating and migrating) the database at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        _private(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # SQLite gives the -wal and -shm files the database's mode; older ones are fixed here.
        for suffix in ("-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{path}{suffix}", 0o600)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # Checkpointer does it off the loop
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> Store:
        """The store of a unit whose data directory is ``data_dir``."""
        return cls(data_dir / DB_FILE)

    def close(self) -> None:
        """Checkpoint and close the database."""
        self._db.close()

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        for number in range(version, len(_MIGRATIONS)):
            self._db.executescript(
                "BEGIN;" + _MIGRATIONS[number] + f"PRAGMA user_version={number + 1};COMMIT;"
            )

    # -- rooms -----------------------------------------------------------------------------

    def save_room(self, room: Room) -> None:
        """Insert or update ``room`` (not its participants)."""
        self._upsert(
            "rooms",
            {
                "sid": room.sid,
                "unique_name": room.unique_name,
                "status": room.status,
                "settings": json.dumps(asdict(room.settings)),
                "date_created": fmt_time(room.date_created),
                "date_updated": fmt_time(room.date_updated),
                "end_time": fmt_time(room.end_time),
                "duration": room.duration,
                "recording_rules": json.dumps(room.recording_rules),
                "rules_updated": fmt_time(room.rules_updated),
            },
            updated=(*_LIFECYCLE, "recording_rules", "rules_updated"),
        )

    def get_room(self, sid: str) -> Room | None:
        """The stored room with ``sid`` (without participants), or None."""
        row = self._db.execute("SELECT * FROM rooms WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else _room(row)

    def find_rooms(self, flt: RoomFilter, limit: int, offset: int) -> list[Room]:
        """Rooms matching ``flt``, newest first."""
        rows = self._page(
            "rooms",
            "date_created DESC, sid",
            limit,
            offset,
            ("status = ?", flt.status),
            ("unique_name = ?", flt.unique_name),
            ("date_created >= ?", fmt_time(flt.created_after)),
            ("date_created <= ?", fmt_time(flt.created_before)),
        )
        return [_room(row) for row in rows]

    def end_interrupted_rooms(self, now: datetime) -> list[str]:
        """End rooms left in progress by a daemon that died; returns their SIDs."""
        stamp = fmt_time(now)
        rows = self._db.execute(
            "SELECT sid, date_created FROM rooms WHERE status = 'in-progress'"
        ).fetchall()
        with self._transaction():
            for row in rows:
                started = parse_time(row["date_created"])
                duration = int((now - started).total_seconds()) if started else 0
                self._db.execute(
                    "UPDATE rooms SET status = 'completed', end_time = ?, date_updated = ?,"
                    " duration = ? WHERE sid = ?",
                    (stamp, stamp, duration, row["sid"]),
                )
            self._db.execute(
                "UPDATE participants SET status = 'disconnected', end_time = ?, date_updated = ?,"
                " duration = CAST(strftime('%s', ?) - strftime('%s', start_time) AS INTEGER)"
                " WHERE status != 'disconnected'",
                (stamp, stamp, stamp),
            )
        return [str(row["sid"]) for row in rows]

    # -- participants ----------------------------------------------------------------------

    def save_participant(self, participant: Participant) -> None:
        """Insert or update ``participant``."""
        self._upsert(
            "participants",
            {
                "sid": participant.sid,
                "room_sid": participant.room_sid,
                "identity": participant.identity,
                "status": participant.status,
                "date_created": fmt_time(participant.date_created),
                "date_updated": fmt_time(participant.date_updated),
                "start_time": fmt_time(participant.start_time),
                "end_time": fmt_time(participant.end_time),
                "duration": participant.duration,
                "subscribe_rules": json.dumps(participant.subscribe_rules),
                "rules_updated": fmt_time(participant.rules_updated),
            },
            updated=(*_LIFECYCLE, "subscribe_rules", "rules_updated"),
        )

    def get_participant(self, room_sid: str, sid: str) -> Participant | None:
        """A stored participant of ``room_sid`` by SID, or None."""
        row = self._db.execute(
            "SELECT * FROM participants WHERE room_sid = ? AND sid = ?", (room_sid, sid)
        ).fetchone()
        return None if row is None else _participant(row)

    def find_participants(
        self, room_sid: str, flt: ParticipantFilter, limit: int, offset: int
    ) -> list[Participant]:
        """Participants of ``room_sid`` matching ``flt``, oldest first."""
        rows = self._page(
            "participants",
            "date_created, sid",
            limit,
            offset,
            ("room_sid = ?", room_sid),
            ("status = ?", flt.status),
            ("identity = ?", flt.identity),
            ("date_created >= ?", fmt_time(flt.created_after)),
            ("date_created <= ?", fmt_time(flt.created_before)),
        )
        return [_participant(row) for row in rows]

    # -- guests and issued identities -------------------------------------------------------

    def claim_guest(self, claim: GuestClaim, now: datetime) -> GuestResult:
        """Give ``claim.identity`` to the guest holding ``claim.key_hash``, if it may have it.

        A name held by another guest (until its hold expires), a name issued otherwise
        (``record_issued``) or seen in the room history without a guest hold, and a new name
        beyond the invite's limit are refused; nothing is recorded then.
        """
        stamp = now.timestamp()
        with self._transaction():
            row = self._db.execute(
                "SELECT key_hash, expires FROM guests WHERE identity = ?", (claim.identity,)
            ).fetchone()
            if row is not None and row["expires"] > stamp:
                if not hmac.compare_digest(row["key_hash"], claim.key_hash):
                    return GuestResult.TAKEN
                self._db.execute(
                    "UPDATE guests SET expires = MAX(expires, ?) WHERE identity = ?",
                    (claim.expires, claim.identity),
                )
                return GuestResult.AGAIN
            if row is None and self._issued_otherwise(claim.identity):
                return GuestResult.RESERVED
            used = self._db.execute(
                "SELECT COUNT(*) FROM guests WHERE invite_id = ?", (claim.invite_id,)
            ).fetchone()[0]
            if int(used) >= claim.limit:
                return GuestResult.FULL
            self._db.execute(
                "INSERT OR REPLACE INTO guests"
                " (identity, key_hash, invite_id, room, expires, date_created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    claim.identity,
                    claim.key_hash,
                    claim.invite_id,
                    claim.room,
                    claim.expires,
                    fmt_time(now),
                ),
            )
        return GuestResult.NEW

    def holds_guest_name(self, identity: str, key_hash: str, now: datetime) -> bool:
        """Whether the guest with ``key_hash`` holds ``identity`` now."""
        row = self._db.execute(
            "SELECT key_hash FROM guests WHERE identity = ? AND expires > ?",
            (identity, now.timestamp()),
        ).fetchone()
        return row is not None and hmac.compare_digest(row["key_hash"], key_hash)

    def _issued_otherwise(self, identity: str) -> bool:
        row = self._db.execute(
            "SELECT EXISTS (SELECT 1 FROM issued WHERE identity = ?)"
            " OR EXISTS (SELECT 1 FROM participants WHERE identity = ?)",
            (identity, identity),
        ).fetchone()
        return bool(row[0])

    def record_issued(self, identity: str, now: datetime) -> None:
        """Record that ``identity`` was given a token other than through an invite.

        A guest holding that name loses the hold: the unit's own tokens are trusted, and from
        now on the name is never given to a guest again.
        """
        with self._transaction():
            self._db.execute(
                "INSERT INTO issued (identity, date_created) VALUES (?, ?)"
                " ON CONFLICT (identity) DO NOTHING",
                (identity, fmt_time(now)),
            )
            self._db.execute("DELETE FROM guests WHERE identity = ?", (identity,))

    # -- invites ---------------------------------------------------------------------------

    def record_invite(self, invite_id: str, room: str, guests: int, expires: float) -> None:
        """Remember an invite the unit made, so it can be listed and revoked."""
        self._db.execute(
            "INSERT INTO invites (invite_id, room, guests, expires, date_created)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (invite_id) DO NOTHING",
            (invite_id, room, guests, expires, fmt_time(datetime.now(UTC))),
        )

    def list_invites(self, now: datetime, limit: int = 100) -> list[IssuedInvite]:
        """Invites not yet expired, newest first, with how many guests each admitted."""
        rows = self._db.execute(
            "SELECT i.*, (SELECT COUNT(*) FROM guests g WHERE g.invite_id = i.invite_id) AS used"
            " FROM invites i WHERE i.expires > ? ORDER BY i.date_created DESC, i.rowid DESC"
            " LIMIT ?",
            (now.timestamp(), limit),
        ).fetchall()
        return [
            IssuedInvite(
                r["invite_id"],
                r["room"],
                r["guests"],
                r["expires"],
                r["date_created"],
                r["revoked"],
                int(r["used"]),
            )
            for r in rows
        ]

    def revoke_invite(self, invite_id: str, now: datetime) -> bool:
        """Revoke an invite the unit made; ``False`` when there is no such invite."""
        cur = self._db.execute(
            "UPDATE invites SET revoked = COALESCE(revoked, ?) WHERE invite_id = ?",
            (fmt_time(now), invite_id),
        )
        return cur.rowcount > 0

    def invite_revoked(self, invite_id: str) -> bool:
        """Whether the invite with ``invite_id`` was revoked."""
        row = self._db.execute(
            "SELECT revoked FROM invites WHERE invite_id = ?", (invite_id,)
        ).fetchone()
        return row is not None and row["revoked"] is not None

    # -- outbox ----------------------------------------------------------------------------

    def enqueue(self, item: NewCallback) -> int:
        """Add a callback to the outbox; returns its id (ids grow: they order a room's events)."""
        cur = self._db.execute(
            "INSERT INTO outbox (room_sid, url, method, params, next_attempt, signature,"
            " idempotency_token) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                item.room_sid,
                item.url,
                item.method,
                json.dumps(item.params),
                item.at,
                item.signature,
                item.idempotency_token,
            ),
        )
        return int(cur.lastrowid or 0)

    def next_sequence(self, room_sid: str) -> int:
        """The next ``SequenceNumber`` of ``room_sid``'s callbacks (0, 1, 2, ...)."""
        row = self._db.execute(
            "INSERT INTO sequences (room_sid, next) VALUES (?, 1)"
            " ON CONFLICT (room_sid) DO UPDATE SET next = next + 1 RETURNING next",
            (room_sid,),
        ).fetchone()
        return int(row[0]) - 1

    def outbox_heads(self) -> list[OutboxItem]:
        """The oldest pending callback of each room (only a room's head may be delivered)."""
        rows = self._db.execute(
            "SELECT * FROM outbox WHERE id IN (SELECT MIN(id) FROM outbox GROUP BY room_sid)"
            " ORDER BY next_attempt, id"
        ).fetchall()
        return [_outbox(row) for row in rows]

    def outbox_size(self) -> int:
        """How many callbacks wait for delivery."""
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def delivered(self, item_id: int) -> None:
        """Drop a delivered (or abandoned) callback."""
        self._db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))

    def retry_later(self, item_id: int, attempts: int, next_attempt: float) -> None:
        """Record a failed attempt and when to try again."""
        self._db.execute(
            "UPDATE outbox SET attempts = ?, next_attempt = ? WHERE id = ?",
            (attempts, next_attempt, item_id),
        )

    # -- recordings and compositions ---------------------------------------------------------

    def save_recording(self, rec: Recording) -> None:
        """Insert or update a recording."""
        row = _row(rec)
        self._upsert("recordings", row, updated=tuple(c for c in row if c != "sid"))

    def get_recording(self, sid: str) -> Recording | None:
        """The recording with ``sid``, or None."""
        row = self._db.execute("SELECT * FROM recordings WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else _recording(row)

    def find_recordings(self, flt: RecordingFilter, limit: int, offset: int) -> list[Recording]:
        """Recordings matching ``flt``, newest first."""
        rows = self._page(
            "recordings",
            "date_created DESC, sid",
            limit,
            offset,
            ("status = ?", flt.status),
            ("source_sid = ?", flt.source_sid),
            ("participant_sid = ?", flt.participant_sid),
            ("room_sid = ?", flt.room_sid),
            ("kind = ?", flt.kind),
            ("date_created >= ?", fmt_time(flt.created_after)),
            ("date_created <= ?", fmt_time(flt.created_before)),
        )
        return [_recording(row) for row in rows]

    def recordings_older_than(self, before: datetime) -> list[Recording]:
        """Recordings with media on disk created before ``before`` (for retention)."""
        rows = self._db.execute(
            "SELECT * FROM recordings WHERE status IN ('completed', 'failed')"
            " AND date_created < ? ORDER BY date_created",
            (fmt_time(before),),
        ).fetchall()
        return [_recording(row) for row in rows]

    def save_composition(self, comp: Composition) -> None:
        """Insert or update a composition."""
        row = _row(comp)
        self._upsert("compositions", row, updated=tuple(c for c in row if c != "sid"))

    def get_composition(self, sid: str) -> Composition | None:
        """The composition with ``sid``, or None."""
        row = self._db.execute("SELECT * FROM compositions WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else _composition(row)

    def find_compositions(
        self, flt: CompositionFilter, limit: int, offset: int
    ) -> list[Composition]:
        """Compositions matching ``flt``, newest first."""
        rows = self._page(
            "compositions",
            "date_created DESC, sid",
            limit,
            offset,
            ("status = ?", flt.status),
            ("room_sid = ?", flt.room_sid),
            ("date_created >= ?", fmt_time(flt.created_after)),
            ("date_created <= ?", fmt_time(flt.created_before)),
        )
        return [_composition(row) for row in rows]

    def save_hook(self, hook: CompositionHook) -> None:
        """Insert or update a composition hook."""
        row = _row(hook)
        self._upsert("composition_hooks", row, updated=tuple(c for c in row if c != "sid"))

    def get_hook(self, sid: str) -> CompositionHook | None:
        """The composition hook with ``sid``, or None."""
        row = self._db.execute("SELECT * FROM composition_hooks WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else _hook(row)

    def find_hooks(self, enabled: bool | None, limit: int, offset: int) -> list[CompositionHook]:
        """Composition hooks, oldest first (``enabled`` filters when given)."""
        rows = self._page(
            "composition_hooks",
            "date_created, sid",
            limit,
            offset,
            ("enabled = ?", None if enabled is None else int(enabled)),
        )
        return [_hook(row) for row in rows]

    def delete_hook(self, sid: str) -> bool:
        """Delete a composition hook; ``False`` when there is none."""
        return self._db.execute("DELETE FROM composition_hooks WHERE sid = ?", (sid,)).rowcount > 0

    # -- helpers ---------------------------------------------------------------------------

    def _upsert(self, table: str, row: dict[str, Any], updated: tuple[str, ...]) -> None:
        """Insert ``row`` into ``table``, or update the ``updated`` columns of its ``sid``."""
        self._db.execute(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"  # noqa: S608 - fixed names, values bound
            f" ON CONFLICT (sid) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in updated)}",
            tuple(row.values()),
        )

    def _page(
        self, table: str, order: str, limit: int, offset: int, *clauses: tuple[str, Any]
    ) -> list[sqlite3.Row]:
        """One page of ``table``'s rows in ``order``, matching the ``clauses`` with a value."""
        where, args = _where(*clauses)
        return self._db.execute(
            f"SELECT * FROM {table}{where} ORDER BY {order} LIMIT ? OFFSET ?",  # noqa: S608 - fixed names and clauses, values bound
            (*args, limit, offset),
        ).fetchall()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


def _private(path: Path) -> None:
    """Create ``path`` readable by its owner only (whatever the umask), or make it so: the
    history names people, and the outbox holds callback URLs that may carry credentials."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class Checkpointer:
    """Flushes the WAL into the database file (with its fsyncs) in a worker thread."""

    def __init__(self, path: Path, interval: float = 5.0) -> None:
        """Checkpoint the database at ``path`` every ``interval`` seconds."""
        self._path = path
        self._interval = interval
        self._tasks = TaskSet("sqlite checkpoints")
        self._running = False

    def start(self) -> None:
        """Start the periodic checkpoints."""
        if not self._running:
            self._running = True
            self._tasks.spawn(self._run(), name="sqlite-checkpoint")

    async def close(self) -> None:
        """Stop, after one last checkpoint."""
        self._running = False
        await self._tasks.close()
        await asyncio.to_thread(self.checkpoint)

    def checkpoint(self) -> None:
        """One checkpoint, on a connection of the calling thread (never the loop's)."""
        db = sqlite3.connect(self._path, timeout=5.0)
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # a busy writer: the next round will do it
            log.info("checkpoint skipped: %s", exc)
        finally:
            db.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await asyncio.to_thread(self.checkpoint)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


#: Columns that change after a room or participant is first saved (besides its rules).
_LIFECYCLE = ("status", "date_updated", "end_time", "duration")


def _where(*clauses: tuple[str, Any]) -> tuple[str, Sequence[Any]]:
    used = [(sql, value) for sql, value in clauses if value is not None]
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(sql for sql, _ in used), [value for _, value in used]


def _stamp(row: sqlite3.Row, column: str) -> datetime:
    """A timestamp column that is never NULL."""
    value = parse_time(row[column])
    assert value is not None, column
    return value


def _room(row: sqlite3.Row) -> Room:
    raw = json.loads(row["settings"])
    raw["video_codecs"] = tuple(raw["video_codecs"])
    return Room(
        sid=row["sid"],
        unique_name=row["unique_name"],
        status=row["status"],
        settings=RoomSettings(**raw),
        date_created=_stamp(row, "date_created"),
        date_updated=_stamp(row, "date_updated"),
        end_time=parse_time(row["end_time"]),
        duration=row["duration"],
        recording_rules=json.loads(row["recording_rules"]),
        rules_updated=parse_time(row["rules_updated"]),
    )


def _participant(row: sqlite3.Row) -> Participant:
    return Participant(
        sid=row["sid"],
        room_sid=row["room_sid"],
        identity=row["identity"],
        status=row["status"],
        date_created=_stamp(row, "date_created"),
        date_updated=_stamp(row, "date_updated"),
        start_time=_stamp(row, "start_time"),
        end_time=parse_time(row["end_time"]),
        duration=row["duration"],
        subscribe_rules=json.loads(row["subscribe_rules"]),
        rules_updated=parse_time(row["rules_updated"]),
    )


def _row(item: Recording | Composition | CompositionHook) -> dict[str, Any]:
    """A dataclass as a table row: times as text, dicts as JSON, booleans as integers."""
    row: dict[str, Any] = {}
    for key, value in vars(item).items():
        if isinstance(value, datetime):
            value = fmt_time(value)
        elif isinstance(value, dict):
            value = json.dumps(value)
        elif isinstance(value, bool):
            value = int(value)
        row[f'"{key}"' if key == "offset" else key] = value
    return row


def _fields(row: sqlite3.Row, times: tuple[str, ...], blobs: tuple[str, ...]) -> dict[str, Any]:
    values = dict(row)
    for key in times:
        values[key] = parse_time(values[key])
    for key in blobs:
        values[key] = json.loads(values[key])
    return values


def _recording(row: sqlite3.Row) -> Recording:
    return Recording(**_fields(row, ("date_created", "date_updated", "date_deleted"), ()))


def _composition(row: sqlite3.Row) -> Composition:
    times = ("date_created", "date_updated", "date_completed", "date_deleted")
    return Composition(**_fields(row, times, ("spec",)))


def _hook(row: sqlite3.Row) -> CompositionHook:
    values = _fields(row, ("date_created", "date_updated"), ("spec", "extra"))
    values["enabled"] = bool(values["enabled"])
    return CompositionHook(**values)


def _outbox(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=int(row["id"]),
        room_sid=row["room_sid"],
        url=row["url"],
        method=row["method"],
        params=json.loads(row["params"]),
        attempts=int(row["attempts"]),
        next_attempt=float(row["next_attempt"]),
        signature=row["signature"],
        idempotency_token=row["idempotency_token"],
    )
