"""``SfuContext``: everything the SFU's HTTP application and its background tasks share.

The appliance builds one with ``SfuContext.open(...)``, hands it to ``create_sfu_app`` and
lets the application's ``cleanup_ctx`` start and stop it (or calls ``start()`` / ``close()``
itself). Handlers reach it through ``request.app[SFU_CONTEXT]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from .callbacks import StatusCallbacks
from .identity import UnitIdentity
from .keys import KeyStore
from .recording.compositions import Compositions
from .recording.disk import RecordingSettings
from .recording.service import RECORDINGS_DIR, RecordingService
from .rooms import RoomDefaults, RoomService
from .store import Checkpointer, Store


@dataclass(frozen=True)
class SfuSettings:
    """Knobs of the control plane (the appliance fills them from its config)."""

    #: The URL clients reach the unit at (``https://unit.local:8443``); resource ``url``s
    #: and paging links start with it. None: the scheme, address and port each request
    #: arrived at (never its ``Host`` header).
    public_base_url: str | None = None
    #: Largest request body accepted (bytes); larger ones get 413.
    max_body_bytes: int = 64 * 1024
    #: Lifetime of the token an invite redemption returns (capped by the invite's expiry).
    invite_token_ttl: int = 4 * 3600
    #: How often the room timeouts are checked (seconds).
    sweep_interval: float = 1.0
    #: Status callback retry: first delay, largest delay (seconds), attempts before dropping.
    callback_base_delay: float = 1.0
    callback_max_delay: float = 300.0
    callback_max_attempts: int = 15
    #: How often the history database is flushed to disk (seconds): at most this much
    #: history is lost on a power cut (a crash of the daemon loses nothing).
    checkpoint_interval: float = 5.0


@dataclass
class LiveSignals:
    """What the media says about the live rooms now: who speaks, how good each link is.

    The signaling service writes it (dominant speaker and network quality, see
    docs/signaling.md); the REST API and status pages read it.
    """

    #: Room SID -> participant SID of its dominant speaker (absent: nobody spoke yet).
    dominant_speakers: dict[str, str] = field(default_factory=dict)
    #: Participant SID -> network quality level 0 to 5 (absent: not measured yet).
    network_quality: dict[str, int] = field(default_factory=dict)


@dataclass
class SfuContext:
    """The unit's identity and keys, the history store, the live rooms, the callbacks and
    the recordings."""

    identity: UnitIdentity
    keys: KeyStore
    store: Store
    rooms: RoomService
    callbacks: StatusCallbacks
    recordings: RecordingService
    compositions: Compositions
    settings: SfuSettings = field(default_factory=SfuSettings)
    checkpointer: Checkpointer | None = None
    signals: LiveSignals = field(default_factory=LiveSignals)
    _started: bool = False

    @classmethod
    def open(
        cls,
        data_dir: Path,
        identity: UnitIdentity,
        keys: KeyStore,
        defaults: RoomDefaults | None = None,
        settings: SfuSettings | None = None,
        recording: RecordingSettings | None = None,
    ) -> SfuContext:
        """Open the store in ``data_dir`` and wire rooms to callbacks (nothing runs yet)."""
        settings = settings or SfuSettings()
        store = Store.in_data_dir(data_dir)
        rooms = RoomService(store, defaults, sweep_interval=settings.sweep_interval)
        callbacks = StatusCallbacks(
            store,
            identity.account_sid,
            identity.auth_token,
            base_delay=settings.callback_base_delay,
            max_delay=settings.callback_max_delay,
            max_attempts=settings.callback_max_attempts,
        )
        # Callbacks listen before rooms start, so rooms a dead daemon left get room-ended.
        callbacks.attach(rooms)
        recordings = RecordingService(
            store, rooms, callbacks, identity.account_sid, data_dir / RECORDINGS_DIR, recording
        )
        compositions = Compositions(
            store, rooms, callbacks, identity.account_sid, data_dir / RECORDINGS_DIR,
            recordings.disk,
        )  # fmt: skip
        recordings.also_expire.append(compositions.expire)
        checkpointer = Checkpointer(store.path, settings.checkpoint_interval)
        return cls(
            identity, keys, store, rooms, callbacks, recordings, compositions, settings,
            checkpointer,
        )  # fmt: skip

    async def start(self) -> None:
        """Start the callbacks' delivery, the recordings (closing interrupted ones), then the
        rooms (ending interrupted ones)."""
        if self._started:
            return
        self._started = True
        if self.checkpointer is not None:
            self.checkpointer.start()
        await self.callbacks.start()
        await self.recordings.start()
        await self.compositions.start()
        await self.rooms.start()

    async def close(self) -> None:
        """Complete live rooms, stop delivery (pending callbacks stay queued), close the DB."""
        if not self._started:
            self.store.close()
            return
        self._started = False
        await self.rooms.close()
        await self.compositions.close()
        await self.recordings.close()
        await self.callbacks.close()
        if self.checkpointer is not None:
            await self.checkpointer.close()
        self.store.close()


SFU_CONTEXT: web.AppKey[SfuContext] = web.AppKey("edge_sfu.context", SfuContext)
