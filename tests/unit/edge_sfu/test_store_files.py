"""The database files are the owner's alone, as the identity and key files are."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge_sfu.identity import load_or_create_identity
from edge_sfu.keys import KeyStore
from edge_sfu.rooms.model import utcnow
from edge_sfu.store import DB_FILE, Store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_are_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)  # what a shell outside systemd gives
    try:
        store = Store.in_data_dir(tmp_path)
        store.record_issued("alice", utcnow())  # a write: the -wal and -shm files exist now
        identity = load_or_create_identity(tmp_path)
        KeyStore(tmp_path, builtin=identity.signing_key).create("k")
    finally:
        os.umask(old)
    files = sorted(tmp_path.glob(DB_FILE + "*"))
    assert [f.name for f in files] == [DB_FILE, DB_FILE + "-shm", DB_FILE + "-wal"]
    assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert _mode(tmp_path / "identity.json") == 0o600
    store.close()


def test_an_existing_readable_database_is_made_private(tmp_path: Path) -> None:
    Store.in_data_dir(tmp_path).close()
    for f in tmp_path.glob(DB_FILE + "*"):
        f.chmod(0o644)
    store = Store.in_data_dir(tmp_path)
    try:
        assert {_mode(f) for f in tmp_path.glob(DB_FILE + "*")} == {0o600}
    finally:
        store.close()


def test_recordings_stored_with_lower_case_codecs_are_named_as_twilio_names_them(
    tmp_path: Path,
) -> None:
    store = Store.in_data_dir(tmp_path)
    version = store._db.execute("PRAGMA user_version").fetchone()[0]
    store._db.execute(f"PRAGMA user_version={version - 1}")  # as a unit before the rename
    columns = ("sid", "room_sid", "participant_sid", "source_sid", "track_name", "kind")
    for sid, codec in (("RT1", "opus"), ("RT2", "vp8"), ("RT3", "H264")):
        store._db.execute(
            f"INSERT INTO recordings ({', '.join(columns)}, codec, container_format, status,"
            ' file_name, date_created, date_updated, "offset", size)'
            " VALUES (?, 'RM1', 'PA1', 'MT1', 't', 'audio', ?, 'mka', 'completed', 'f',"
            " '2026-11-29T00:00:00Z', '2026-11-29T00:00:00Z', 0, 0)",
            (sid, codec),
        )
    store.close()
    store = Store.in_data_dir(tmp_path)
    try:
        codecs = dict(store._db.execute("SELECT sid, codec FROM recordings").fetchall())
        assert codecs == {"RT1": "OPUS", "RT2": "VP8", "RT3": "H264"}
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == version
    finally:
        store.close()
