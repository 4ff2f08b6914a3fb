"""Twilio status callbacks: from room events to signed, ordered, durable HTTP requests.

``StatusCallbacks`` listens to a ``RoomService``. Each event of a room that has a
``StatusCallback`` URL becomes a row of the outbox table (in the same SQLite database as the
history, so a restart loses none) carrying Twilio's form parameters and a per-room
``SequenceNumber``. A delivery task sends each room's oldest pending callback, signed with
``X-Twilio-Signature`` (HMAC-SHA1 of the URL and the sorted parameters, keyed with the unit's
auth token, exactly as twilio-python's ``RequestValidator`` checks it), and the next one only
after it succeeded or was abandoned: callbacks of one room arrive in order; rooms do not wait
for each other. Failures are retried with exponential backoff and jitter.

Delivery is at least once: a daemon killed between a receiver's 2xx and the outbox update
sends that callback again after its restart. Everything a request carries (parameters with
``Timestamp`` and ``SequenceNumber``, signature, ``I-Twilio-Idempotency-Token``) is fixed when
the callback is queued, so a retry is byte-for-byte the same request and a receiver can drop
duplicates by the token or by (``RoomSid``, ``SequenceNumber``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import random
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import aiohttp

from edge_common.lifecycle import TaskSet

from .rooms import RoomService
from .rooms import events as ev
from .rooms.model import Participant, PublishedTrack, Room
from .store import NewCallback, OutboxItem, Store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
#: Twilio's header naming one webhook: the same on every retry of it.
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's request signature: base64(HMAC-SHA1(token, url + sorted key/value pairs))."""
    payload = url + "".join(key + params[key] for key in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def event_params(account_sid: str, event: ev.RoomEvent) -> tuple[Room, dict[str, str]] | None:
    """Twilio's callback parameters for ``event`` (without ``SequenceNumber``), or None if
    Twilio sends no callback for it."""
    name = _EVENT_NAMES.get(type(event))
    if name is None:
        return None
    room: Room = event.room
    params = room_event_params(account_sid, room, name)
    if isinstance(event, ev.RoomCompleted) and room.duration is not None:
        params["RoomDuration"] = str(room.duration)
    participant: Participant | None = getattr(event, "participant", None)
    if participant is not None:
        params.update(_participant_params(participant))
    track: PublishedTrack | None = getattr(event, "track", None)
    if track is not None:
        params.update({"TrackSid": track.sid, "TrackKind": track.kind, "TrackName": track.name})
    return room, params


def room_event_params(account_sid: str, room: Room, name: str) -> dict[str, str]:
    """The parameters every callback about ``room`` carries, for the event ``name``."""
    return {
        "AccountSid": account_sid,
        "RoomName": room.unique_name,
        "RoomSid": room.sid,
        "RoomStatus": room.status,
        "RoomType": room.settings.type,
        "StatusCallbackEvent": name,
        "Timestamp": callback_timestamp(),
    }


def callback_timestamp() -> str:
    """Now, as callbacks' ``Timestamp`` (milliseconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _participant_params(participant: Participant) -> dict[str, str]:
    params = {
        "ParticipantSid": participant.sid,
        "ParticipantIdentity": participant.identity,
        "ParticipantStatus": participant.status,
    }
    if participant.duration is not None:
        params["ParticipantDuration"] = str(participant.duration)
    return params


_EVENT_NAMES: dict[type, str] = {
    ev.RoomCreated: "room-created",
    ev.RoomCompleted: "room-ended",
    ev.ParticipantConnected: "participant-connected",
    ev.ParticipantDisconnected: "participant-disconnected",
    ev.TrackPublished: "track-added",
    ev.TrackUnpublished: "track-removed",
    ev.TrackEnabled: "track-enabled",
    ev.TrackDisabled: "track-disabled",
}


class StatusCallbacks:
    """The outbox and its delivery task. ``start()`` / ``close()`` bracket its life."""

    def __init__(
        self,
        store: Store,
        account_sid: str,
        auth_token: str,
        *,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        max_attempts: int = 15,
        timeout: float = 10.0,
        concurrency: int = 8,
    ) -> None:
        """Backoff: attempt n waits about ``base_delay * 2**n`` (at most ``max_delay``),
        jittered; after ``max_attempts`` failures a callback is dropped (logged) so the
        room's later callbacks can go."""
        self._store = store
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._base_delay, self._max_delay = base_delay, max_delay
        self._max_attempts = max_attempts
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._busy_rooms: set[str] = set()
        # the worker and its deliveries; start/close may alternate (a restart resumes the outbox)
        self._tasks = TaskSet("status callbacks")
        self._session: aiohttp.ClientSession | None = None  # set while delivering
        self._running = False

    def attach(self, rooms: RoomService) -> None:
        """Listen to ``rooms`` (do this before ``rooms.start()`` so restart endings count)."""
        rooms.add_listener(self.on_event)

    def on_event(self, event: ev.RoomEvent) -> None:
        """Queue the callback for ``event`` if its room has a status callback URL."""
        found = event_params(self._account_sid, event)
        if found is None:
            return
        room, params = found
        self.queue(
            room.sid, room.settings.status_callback, room.settings.status_callback_method, params
        )

    def queue(self, group: str, url: str | None, method: str, params: dict[str, str]) -> None:
        """Queue a callback to ``url`` (nothing if it is empty) with ``params`` and the next
        ``SequenceNumber`` of ``group``: a room's SID for its events (recordings' included),
        a composition's for its own. Callbacks of one group are delivered in order."""
        if not url:
            return
        params["SequenceNumber"] = str(self._store.next_sequence(group))
        target, _ = _request(method, url, params)
        signed = params if method != "GET" else {}
        item = NewCallback(
            room_sid=group,
            url=url,
            method=method,
            params=params,
            signature=twilio_signature(self._auth_token, target, signed),
            idempotency_token=f"{group}-{params['SequenceNumber']}-{secrets.token_hex(8)}",
            at=time.time(),
        )
        self._store.enqueue(item)
        self._wake.set()

    def pending(self) -> int:
        """How many callbacks wait for delivery."""
        return self._store.outbox_size()

    async def start(self) -> None:
        """Open the HTTP client and start delivering (including what a previous run left)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._running = True
            self._tasks.spawn(self._run(), name="status-callbacks")

    async def close(self) -> None:
        """Stop delivering; undelivered callbacks stay in the outbox for the next start."""
        self._running = False
        await self._tasks.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while self._running:
            self._wake.clear()
            delay = self._dispatch_due()
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
            # cancellation that races with the wake-up, and close() would then never return.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _dispatch_due(self) -> float:
        """Start a delivery for each room whose head is due; returns how long to sleep."""
        now = time.time()
        sleep = 60.0
        for item in self._store.outbox_heads():
            if item.room_sid in self._busy_rooms:
                continue
            if item.next_attempt > now:
                sleep = min(sleep, item.next_attempt - now)
                continue
            self._busy_rooms.add(item.room_sid)
            self._tasks.spawn(self._deliver(item), name=f"callback-{item.id}")
        return max(sleep, 0.01)

    async def _deliver(self, item: OutboxItem) -> None:
        try:
            async with self._slots:
                ok = await self._send(item)
            if ok:
                self._store.delivered(item.id)
            elif item.attempts + 1 >= self._max_attempts:
                log.warning("status callback %s to %s abandoned", item.id, _origin(item.url))
                self._store.delivered(item.id)
            else:
                delay = self._backoff(item.attempts)
                self._store.retry_later(item.id, item.attempts + 1, time.time() + delay)
        finally:
            self._busy_rooms.discard(item.room_sid)
            self._wake.set()

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self._max_delay, self._base_delay * (2.0**attempts))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # "equal jitter"

    async def _send(self, item: OutboxItem) -> bool:
        assert self._session is not None
        url, data = _request(item.method, item.url, item.params)
        signature = item.signature or twilio_signature(
            self._auth_token, url, item.params if data is not None else {}
        )
        headers = {SIGNATURE_HEADER: signature, "User-Agent": "edge-appliance"}
        if item.idempotency_token:
            headers[IDEMPOTENCY_HEADER] = item.idempotency_token
        try:
            async with self._session.request(item.method, url, data=data, headers=headers) as resp:
                await resp.read()
                return 200 <= resp.status < 300
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("status callback to %s failed: %s", _origin(item.url), type(exc).__name__)
            return False


def _request(method: str, url: str, params: dict[str, str]) -> tuple[str, dict[str, str] | None]:
    """The URL and form body of a callback: for GET the parameters go in the query."""
    if method != "GET":
        return url, params
    sep = "&" if "?" in url else "?"
    # ':' stays literal (as in timestamps): URL libraries normalize "%3A" to ":", and the
    # receiver must sign the very URL we signed.
    return url + sep + urlencode(sorted(params.items()), safe=":"), None


def _origin(url: str) -> str:
    """Scheme and host only: callback URLs may carry credentials or tokens."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}"
