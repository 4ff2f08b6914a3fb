"""``DiskBudget``: how much recordings and compositions may still write, one account for both.

The recordings directory holds both recordings and compositions, so one quota covers them
(``quota_bytes``), and neither may leave the disk the database and config live on with less
free space than ``min_free_bytes``. The budget counts the finished files it was told about
(``add`` / ``remove``, and a scan at start for what earlier runs left) plus what the files
being written hold now (their writers register with ``count_running``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

QUOTA_USED = "the recordings quota is used up"
DISK_FULL = "the disk is nearly full"
NO_DIRECTORY = "the recordings directory is not available"


@dataclass(frozen=True)
class RecordingSettings:
    """Where recordings go and how much of the disk they may take."""

    #: Largest total size of the recordings directory, recordings and compositions (bytes).
    quota_bytes: int = 8 * 1024**3
    #: Never write when the disk would keep less free space than this (bytes): the
    #: database and config live on the same disk.
    min_free_bytes: int = 512 * 1024**2
    #: Delete recording and composition media this many days after it was made (0: keep).
    retention_days: int = 30
    #: How often retention runs (seconds).
    retention_interval: float = 3600.0


class DiskBudget:
    """The one account of the recordings directory (see the module docstring)."""

    def __init__(self, directory: Path, settings: RecordingSettings) -> None:
        self.directory = directory
        self.settings = settings
        #: Bytes of finished files in the directory.
        self.used = 0
        self._running: list[Callable[[], int]] = []

    async def scan(self) -> None:
        """Count what is in the directory now (at start: files earlier runs left)."""
        self.used = await asyncio.to_thread(_tree_size, self.directory)

    def count_running(self, source: Callable[[], int]) -> None:
        """Count ``source()`` (bytes written so far by files being written) from now on."""
        self._running.append(source)

    def running(self) -> int:
        """Bytes the files being written hold now."""
        return sum(source() for source in self._running)

    def add(self, size: int) -> None:
        """A file of ``size`` bytes is finished (or was found)."""
        self.used += size

    def remove(self, size: int) -> None:
        """A finished file of ``size`` bytes was deleted."""
        self.used = max(0, self.used - size)

    def left(self) -> tuple[int, str]:
        """How many more bytes may be written, and the limit that binds first."""
        quota_left = self.settings.quota_bytes - self.used - self.running()
        try:
            free = shutil.disk_usage(self.directory).free
        except OSError:
            return 0, NO_DIRECTORY
        # what is being written is on the disk already: free space counts it
        disk_left = free - self.settings.min_free_bytes
        if disk_left < quota_left:
            return max(0, disk_left), DISK_FULL
        return max(0, quota_left), QUOTA_USED

    def full(self, needed: int = 1) -> str | None:
        """Why ``needed`` more bytes may not be written now, or None."""
        left, limit = self.left()
        return limit if left < needed else None


def _tree_size(directory: Path) -> int:
    total = 0
    with contextlib.suppress(OSError):
        for path in directory.iterdir():
            with contextlib.suppress(OSError):
                if path.is_file():
                    total += path.stat().st_size
    return total
