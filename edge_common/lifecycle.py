"""Closing things once, and the tasks an object starts.

``Closeable`` (and ``AsyncCloseable`` for objects whose close awaits something) is the
close-once protocol every long-lived object of the media plane follows, after mediasoup's:

* ``close()`` is the user closing the object. Every ``on_close`` listener runs.
* ``close_from_parent(parent)`` is the object closing because ``parent`` closes (a
  transport closing its consumers). Listeners that ``parent`` registered for itself
  (``on_close(..., parent=parent)``) do not run: the parent is already tearing down and
  must not be called back into (to renegotiate, to update bookkeeping it is about to
  drop). Every other listener runs.

Either way the object closes once: later calls do nothing. Subclasses release their own
resources in ``_on_close``, where ``closed_by`` says which parent (if any) closed them.

``TaskSet`` holds the tasks an object spawned; ``close`` cancels and awaits them (``cancel``
only cancels, for an owner whose own close is synchronous). Its ``every`` calls a function
periodically on a timer shared by every caller with the same period on the loop: the
per-transport chores of a room (feedback ten times a second) then wake the loop once per
period, not once per transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Self, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _CloseState:
    """What both flavours share: the flag, the listeners and who closed."""

    def __init__(self) -> None:
        self.closed = False
        #: The parent whose close closed this object; None when closed by its user.
        self.closed_by: object | None = None
        self._close_listeners: list[tuple[Callable[[Any], object], object | None]] = []

    def on_close(self, callback: Callable[[Self], object], *, parent: object = None) -> None:
        """Call ``callback(self)`` once when this object closes.

        A parent registering its own bookkeeping passes itself as ``parent``: the callback is
        then skipped when the close comes from that parent (``close_from_parent``).
        If the object is closed already the callback is not called.
        """
        if not self.closed:
            self._close_listeners.append((callback, parent))

    def _begin_close(self, parent: object | None) -> bool:
        """Mark closed; False when it already was (the caller then does nothing)."""
        if self.closed:
            return False
        self.closed = True
        self.closed_by = parent
        return True

    def _notify_closed(self) -> None:
        listeners, self._close_listeners = self._close_listeners, []
        for callback, parent in listeners:
            if parent is not None and parent is self.closed_by:
                continue
            try:
                callback(self)
            except Exception:
                # one listener failing must not keep the others (or the closer) from running
                logger.exception("close listener of %r failed", self)


class Closeable(_CloseState):
    """An object that closes once, synchronously; see the module docstring."""

    def close(self) -> None:
        """Close (the user's decision). Idempotent."""
        self._close(None)

    def close_from_parent(self, parent: object) -> None:
        """Close because ``parent`` closes; ``parent``'s own listeners are not called back.

        Internal to the object tree: called by parents only.
        """
        self._close(parent)

    def _close(self, parent: object | None) -> None:
        if not self._begin_close(parent):
            return
        try:
            self._on_close()
        finally:
            self._notify_closed()

    def _on_close(self) -> None:
        """Subclasses release their resources and close their children here."""


class AsyncCloseable(_CloseState):
    """Like ``Closeable``, for objects whose close awaits (tasks, sockets)."""

    async def close(self) -> None:
        """Close (the user's decision). Idempotent."""
        await self._close(None)

    async def close_from_parent(self, parent: object) -> None:
        """Close because ``parent`` closes; ``parent``'s own listeners are not called back.

        Internal to the object tree: called by parents only.
        """
        await self._close(parent)

    async def _close(self, parent: object | None) -> None:
        if not self._begin_close(parent):
            return
        try:
            await self._on_close()
        finally:
            self._notify_closed()

    async def _on_close(self) -> None:
        """Subclasses release their resources and close their children here."""


class _Metronome:
    """One timer on one loop calling every registered function each ``period`` seconds.

    Ticks are due at fixed times (the first one ``period`` after the first registration);
    a tick that runs late is not made up for, the next one is due a period after it at the
    latest. A function registered between ticks is first called at the next tick (sooner
    than a period after it registered: callers need a rate, not a phase). A function that
    raises is logged and keeps its place. The timer stops when the last one leaves.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float) -> None:
        self._loop = loop
        self._period = period
        self._callbacks: dict[object, Callable[[], object]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def add(self, key: object, callback: Callable[[], object]) -> None:
        self._callbacks[key] = callback
        if self._handle is None:
            self._due = self._loop.time() + self._period
            self._handle = self._loop.call_at(self._due, self._tick)

    def remove(self, key: object) -> None:
        self._callbacks.pop(key, None)
        if self._callbacks:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        # forgotten when idle: it holds its loop, which would otherwise keep the registry's
        # weak key alive for ever (a process running loop after loop, as tests do)
        by_period = _METRONOMES.get(self._loop)
        if by_period is not None and by_period.get(self._period) is self:
            del by_period[self._period]
            if not by_period:
                del _METRONOMES[self._loop]

    def _tick(self) -> None:
        # the next tick is set first: a function may remove itself (or the last one) or
        # register another while this one runs
        self._due = max(self._due + self._period, self._loop.time())
        self._handle = self._loop.call_at(self._due, self._tick)
        for key, callback in list(self._callbacks.items()):
            if key not in self._callbacks:
                continue  # removed by one called before it in this tick
            try:
                callback()
            except Exception:
                logger.exception("periodic %s failed", getattr(callback, "__qualname__", callback))


#: Each loop's metronomes by period (a loop that is gone takes its own with it).
_METRONOMES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Metronome]] = (
    weakref.WeakKeyDictionary()
)


def _metronome(period: float) -> _Metronome:
    loop = asyncio.get_running_loop()
    by_period = _METRONOMES.setdefault(loop, {})
    metronome = by_period.get(period)
    if metronome is None:
        metronome = by_period[period] = _Metronome(loop, period)
    return metronome


class TaskSet:
    """The background tasks one object started: ``spawn`` them, ``close`` stops them all.

    A task that ends with an exception is logged (nobody awaits it, so asyncio would only
    complain when it is garbage-collected). ``close`` cancels every task, awaits each, and
    also stops the tasks spawned while it waits (a cancelled task's cleanup may spawn one).
    """

    def __init__(self, name: str = "") -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._periodic: list[tuple[_Metronome, object]] = []

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Run ``coro`` as a task on the running loop, until it ends or ``close``."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def every(self, period: float, callback: Callable[[], object]) -> None:
        """Call ``callback()`` every ``period`` seconds on the running loop until ``cancel``
        or ``close``: from a timer shared with every other ``every`` of the same period on
        the loop (the first call comes at its next tick, within a period). Must be quick
        and must not block: the others wait for it. An exception is logged; the calls go on.
        """
        metronome = _metronome(period)
        key = object()
        metronome.add(key, callback)
        self._periodic.append((metronome, key))

    def _stop_periodic(self) -> None:
        periodic, self._periodic = self._periodic, []
        for metronome, key in periodic:
            metronome.remove(key)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "task %s of %s failed", task.get_name(), self._name, exc_info=task.exception()
            )

    def cancel(self) -> None:
        """Cancel every task without waiting for them to end.

        For an owner that closes synchronously (from a callback, where nothing can be
        awaited): the tasks end on the loop's next turns and their errors are still logged.
        Owners that can await use ``close``.
        """
        self._stop_periodic()
        for task in list(self._tasks):
            task.cancel()

    async def close(self) -> None:
        """Cancel every task and wait until each has ended (their errors are logged)."""
        self._stop_periodic()
        current = asyncio.current_task()
        while pending := [t for t in self._tasks if t is not current]:
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._tasks.difference_update(pending)
        self._stop_periodic()  # any a cancelled task's cleanup registered
