"""A small event emitter with an awaitable ``wait_for`` (for kiosks, field units and tests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

Handler = Callable[..., object]


class Emitter:
    """``on(event, handler)``; handlers run synchronously, in registration order."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._waiters: list[tuple[str, Callable[..., bool], asyncio.Future[tuple[Any, ...]]]] = []

    def on(self, event: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(*args)`` on every ``event``; returns a function that stops it."""
        self._handlers.setdefault(event, []).append(handler)
        return lambda: self.off(event, handler)

    def off(self, event: str, handler: Handler) -> None:
        """Stop calling ``handler``."""
        handlers = self._handlers.get(event, [])
        if handler in handlers:
            handlers.remove(handler)

    def emit(self, event: str, *args: Any) -> None:
        """Run the handlers of ``event``; a failing handler is logged, not propagated."""
        for handler in list(self._handlers.get(event, [])):
            try:
                handler(*args)
            except Exception:
                logger.exception("handler of %r failed", event)
        for waiter in list(self._waiters):
            name, predicate, future = waiter
            if name == event and not future.done():
                try:
                    matched = predicate(*args)
                except Exception:
                    matched = False
                if matched:
                    future.set_result(args)
                    self._waiters.remove(waiter)

    def expect(
        self, event: str, predicate: Callable[..., bool] = lambda *_: True
    ) -> asyncio.Future[tuple[Any, ...]]:
        """A future for the next ``event`` matching ``predicate``, registered now (so an event
        that fires while the caller awaits something else is not missed)."""
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        waiter = (event, predicate, future)
        self._waiters.append(waiter)
        future.add_done_callback(
            lambda _f: self._waiters.remove(waiter) if waiter in self._waiters else None
        )
        return future

    async def wait_for(
        self,
        event: str,
        predicate: Callable[..., bool] = lambda *_: True,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - the one knob callers need
    ) -> tuple[Any, ...]:
        """The arguments of the next ``event`` matching ``predicate``; ``TimeoutError`` after
        ``timeout`` seconds."""
        return await asyncio.wait_for(self.expect(event, predicate), timeout)
