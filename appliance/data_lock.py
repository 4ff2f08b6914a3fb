"""One daemon per data directory: an exclusive ``flock`` on ``daemon.lock`` inside it.

A second daemon started on the same directory would otherwise open the same database and
end the first one's live rooms as "left behind by a dead daemon" before failing to bind its
port. The lock is taken before anything in the directory is read or written and held until
the process exits; the kernel drops it when the process dies, however it dies, so a stale
lock file never blocks a restart. The file holds the owner's PID, for the error message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "daemon.lock"


class DataDirBusy(RuntimeError):
    """Another live process holds the data directory's lock."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        who = f"process {pid}" if pid else "another process"
        super().__init__(
            f"{data_dir} is in use by {who} (another edge-appliance daemon); "
            "stop it first, or give this one its own --data-dir"
        )
        self.data_dir = data_dir
        self.pid = pid


class DataDirLock:
    """The held lock; :meth:`release` (or process exit, or ``exec``) lets it go."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Unlock and close (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_data_dir(data_dir: Path) -> DataDirLock:
    """Create ``data_dir`` if needed and lock it, or raise :class:`DataDirBusy`.

    The descriptor is close-on-exec (Python's default), so a restart by ``exec`` releases
    the lock and the new image takes it again.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / LOCK_NAME
    # No O_TRUNC: truncating before holding the lock would wipe the owner's PID.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        raise DataDirBusy(data_dir, pid) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return DataDirLock(path, fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
