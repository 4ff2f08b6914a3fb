"""The field role: the kiosk's call machinery with nobody pressing, and a link that never
gives up.

``FieldRole`` is a ``KioskRole`` whose policy is persistent and jittered (``field.*`` in the
config): it joins at start-up, and whatever ends the call (a hub restart, a lost network, a
name that does not resolve, the room ending) it tries again with capped, jittered
exponential backoff; only a long press of the join button stops it. The hub is reached
either with the unit's own protocol (``kiosk.remote_url``, as a kiosk joins another unit) or
over WHIP (``field.whip_url``). While it cannot publish, ``LocalRecording`` records the
camera and microphone on the unit.

The link's state (``starting``, ``live``, ``reconnecting`` since when and at which attempt,
``stopped``) is the unit's state on the status page, in ``edge-appliance`` status and in
systemd's status line; the LEDs show the machine's patterns (on while live, double blink
while waiting to retry, slow blink while trying).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from edge_sfu.signaling import SignalingService

from ..kiosk.devices import KioskDevices
from ..kiosk.role import KioskRole
from ..kiosk.state import KioskMachine, KioskState
from ..mapping import call_identity
from ..state import DaemonState
from .local_recording import LocalRecording

if TYPE_CHECKING:
    from ..kiosk.call import Call


class HubNameError(ConnectionError):
    """The hub's host name does not resolve (DNS): the link's reason says so plainly."""


def dns_failure(exc: BaseException) -> socket.gaierror | None:
    """The name-resolution error behind ``exc`` (its causes included), if that is what it is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, socket.gaierror):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@dataclass
class FieldLink:
    """The link to the hub as people see it."""

    state: str = "starting"  # starting | live | reconnecting | stopped
    #: When the current state began (Unix time).
    since: float = 0.0
    #: While reconnecting: the number of the retry under way or next, from 1 after the link
    #: was lost; 0 otherwise.
    attempt: int = 0
    #: Why the last attempt failed or the call ended ('' if it did not).
    reason: str = ""
    #: Seconds before the next retry, while one is scheduled.
    retry_in: float | None = None

    def follow(self, machine: KioskMachine, now: float, *, call_down: bool = False) -> None:
        """Take the state from ``machine`` (and, in a call, whether the call's link is being
        re-made: ``call_down``); ``since`` moves only when the state changes."""
        state = machine.state
        if state is KioskState.IN_CALL and call_down:
            new = "reconnecting"
        elif state is KioskState.IN_CALL:
            new = "live"
        elif state is KioskState.IDLE:
            new = "starting" if self.state == "starting" else "stopped"
        elif state in (KioskState.JOINING, KioskState.LEAVING) and machine.failures == 0:
            new = "starting" if self.state in ("starting", "stopped") else self.state
        else:
            new = "reconnecting"
        if new != self.state or not self.since:
            self.since = now
        self.state = new
        self.attempt = max(1, machine.failures) if new == "reconnecting" else 0
        self.reason = machine.last_reason
        pending = state is KioskState.ERROR and machine.retry_pending
        self.retry_in = round(machine.retry_delay, 3) if pending else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, for the status summary."""
        return {
            "state": self.state,
            "since": round(self.since, 3),
            "attempt": self.attempt,
            "reason": self.reason,
            "retry_in_s": self.retry_in,
        }


class FieldRole(KioskRole):
    """Streams to the hub for the daemon's lifetime (see the module docstring)."""

    def __init__(
        self,
        state: DaemonState,
        machine: KioskMachine,
        devices: KioskDevices,
        signaling: Callable[[], SignalingService],
    ) -> None:
        super().__init__(state, machine, devices, signaling)
        s = state.settings
        self.link = FieldLink()
        self._call_down = False  # the call's client is re-making its link
        self._recording = (
            LocalRecording(signaling, devices, self._mixer, s.field.local_room, call_identity(s))
            if s.field.record_while_down
            else None
        )

    async def start(self) -> None:
        """Open the devices, show the state, and start streaming."""
        await super().start()
        self._state.role_details = self.details
        self.press("join")

    async def close(self) -> None:
        """Finish the local recording, then what the kiosk role closes."""
        self._state.role_details = None
        if self._recording is not None:
            await self._recording.close()
        await super().close()

    def details(self) -> dict[str, Any]:
        """The link and the local recording, for the status summary."""
        recording = self._recording is not None and self._recording.active
        return {"link": {**self.link.as_dict(), "recording_locally": recording}}

    @property
    def hub(self) -> str:
        """Where the unit streams to, for people (the URL without credentials)."""
        s = self._state.settings
        return s.field.whip_url if s.field.transport == "whip" else s.kiosk.remote_url

    def _show(self, text: str) -> None:
        link = self.link
        if self._machine.state is not KioskState.IN_CALL:
            self._call_down = False
        link.follow(self._machine, time.time(), call_down=self._call_down)
        self._state.status.role_state = link.state
        self._state.status.muted = self._machine.muted
        self._state.status.set_line(self._line())
        if self._recording is not None:
            self._recording.wanted = link.state == "reconnecting"
            self._tasks.spawn(self._recording.follow(), name="field-local-recording")

    def _line(self) -> str:
        link = self.link
        at = time.strftime("%H:%M:%S", time.localtime(link.since))
        match link.state:
            case "live":
                line = f"Live to {self.hub}"
            case "starting":
                line = f"Connecting to {self.hub}"
            case "stopped":
                line = "Stopped by a long press; press join to stream again"
            case _:
                line = f"Reconnecting since {at} (attempt {link.attempt}"
                if link.retry_in is not None:
                    line += f", next in {link.retry_in:.3g} s"
                line += ")"
                if link.reason:
                    line += f": {link.reason}"
                if self._recording is not None:
                    line += "; recording locally"
        if self._state.status.degraded:
            line += " (without " + ", ".join(sorted(self._state.status.degraded)) + ")"
        return line

    def _call_link(self, up: bool) -> None:
        # The client lost its link and is re-making it (a silent network, a hub that stopped
        # answering): that is reconnecting, and recording locally, until it is back or the
        # client gives up and the call ends.
        self._call_down = not up
        self._show("")

    async def _open_call(self) -> tuple[Call, Awaitable[None]]:
        field = self._state.settings.field
        if field.transport != "whip":
            try:  # (the unit's protocol asks the hub for a token first)
                call, join = await super()._open_call()
            except Exception as exc:
                self._raise_explained(exc)
                raise
        else:
            from .whip import WhipCall

            whip = WhipCall(self._devices.use(), self._mixer, self._call_ended)
            call, join = whip, whip.join_whip(field.whip_url, field.whip_token)
        call.on_link = self._call_link
        return call, self._explaining(join)

    async def _explaining(self, join: Awaitable[None]) -> None:
        try:
            await join
        except Exception as exc:
            self._raise_explained(exc)
            raise

    def _raise_explained(self, exc: Exception) -> None:
        # A name that does not resolve is the hub's address (or this unit's DNS), not the
        # hub: say it in those words rather than as the HTTP library's connection error.
        dns = dns_failure(exc)
        if dns is not None:
            host = urlsplit(self.hub).hostname or self.hub
            raise HubNameError(f"{host} does not resolve (DNS: {dns.strerror or dns})") from exc
