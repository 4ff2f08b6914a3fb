"""What the appliance hands to ``provisioning``: the :class:`Backend` protocol.

``provisioning`` never imports ``edge_sfu`` or ``hardware``; the composition root adapts
them to this protocol. The settings form is driven entirely by :meth:`Backend.settings_schema`,
so adding a config key on the appliance side needs no change to the admin pages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

FieldKind = Literal["str", "int", "float", "bool", "choice", "list", "url"]
"""How a field is shown and parsed.

``list`` is a list of strings edited one per line (STUN/TURN servers); ``url`` is a string
that must be an ``http``/``https``/``ws``/``wss``/``stun``/``turn`` URL, or empty when optional.
"""


@dataclass(frozen=True)
class FieldSpec:
    """One editable setting.

    ``path`` is the dotted path into the TOML config (list items by index, as in
    ``camera.layers.0.width``). ``secret`` fields are never echoed back to the page nor
    exported unless asked; an empty submission keeps the stored value. ``live`` says whether
    a change applies without a restart (shown on the page; the backend has the final word in
    :class:`SaveResult`). ``pattern`` is a regular expression the whole value (each item of a
    ``list``) must match, explained to the admin by ``pattern_help``. ``minimum``/``maximum``
    bound numbers and ``max_length`` strings. ``section_help`` is one line under the section's
    title (any field of the section may carry it).
    """

    path: str
    label: str
    kind: FieldKind = "str"
    section: str = "General"
    help: str = ""
    choices: Sequence[str] = ()
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = 256
    required: bool = True
    secret: bool = False
    live: bool = False
    max_items: int = 16
    pattern: str = ""
    pattern_help: str = ""
    section_help: str = ""


@dataclass(frozen=True)
class Address:
    """Where the pages answer once the saved settings are in force (after a restart).

    ``tls``: HTTPS or plain HTTP. ``port`` 0: the port in use now. ``public_url``, when set,
    is the address people use (a name or a proxy in front of the unit) and is taken as is.
    """

    tls: bool
    port: int = 0
    public_url: str = ""


@dataclass(frozen=True)
class SaveResult:
    """What a save did: paths applied at once, and paths that wait for a restart."""

    applied_live: Sequence[str] = ()
    needs_restart: Sequence[str] = ()


@dataclass(frozen=True)
class ApiKeyInfo:
    """One API key as listed on the page (never its secret)."""

    sid: str
    name: str
    created: str = ""


@dataclass(frozen=True)
class InviteInfo:
    """One invite the unit made, as listed on the invites page (never the invite itself)."""

    invite_id: str
    room: str
    guests: int
    used: int
    #: Unix time.
    expires: float
    created: str = ""
    revoked: bool = False


@dataclass(frozen=True)
class MediaInfo:
    """One recording or composition, as the recordings page lists it."""

    sid: str
    kind: Literal["recording", "composition"]
    room: str
    #: The track's name (recordings) or the file's format and size (compositions).
    title: str
    status: str
    created: str
    #: Seconds, when known.
    duration: int | None
    size: int
    #: A short-lived signed URL of the file on this unit; empty when there is no file.
    url: str = ""


@dataclass(frozen=True)
class DoctorFinding:
    """One row of the unit's self-check: a part, what backs it, whether it works, and why."""

    part: str
    backend: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class LogEntry:
    """One recent log line, secrets already masked by the backend."""

    time: float
    level: str
    logger: str
    message: str


#: Still picture formats the status page asks for.
SNAPSHOT_FORMATS = ("jpeg", "png")
#: Log levels the status page filters by, lowest first.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@runtime_checkable
class Backend(Protocol):
    """Everything the admin pages read from or apply to the running appliance.

    All methods are called on the event loop and must not block for long; slow work belongs
    in the appliance's own threads or tasks.
    """

    # Settings -------------------------------------------------------------------------
    def settings_schema(self) -> Sequence[FieldSpec]:
        """Fields the settings page shows, in order, grouped by ``FieldSpec.section``."""
        ...

    def load_settings(self) -> dict[str, Any]:
        """The saved config as a nested dict (the parsed TOML), changes pending a restart
        included: the page shows what is saved, never only what is in force.
        """
        ...

    def pending_restart(self) -> Sequence[str]:
        """Field paths whose saved value waits for a restart to take effect."""
        ...

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, str]:
        """Cross-field checks on a full settings dict: ``{field path: message}``, empty if valid.

        Per-field type and range checks from the schema have already passed when this is
        called; this is for what only the appliance knows (a UDP range whose start is above
        its end, a GPIO pin used twice, a camera layer bigger than the sensor...).
        """
        ...

    def save_settings(self, settings: Mapping[str, Any]) -> SaveResult:
        """Merge ``settings`` onto the saved config, write it atomically, apply what can apply
        live; ``needs_restart`` names every saved key not in force yet.
        """
        ...

    def request_restart(self) -> None:
        """Restart the daemon soon (after the current response has been sent)."""
        ...

    def address_after_restart(self) -> Address:
        """Where the pages will answer after a restart, from the saved settings (turning
        HTTPS on or off, or changing the port, moves them)."""
        ...

    # API keys and invites --------------------------------------------------------------
    def list_api_keys(self) -> Sequence[ApiKeyInfo]:
        """Every API key that the REST API accepts now."""
        ...

    def create_api_key(self, name: str) -> tuple[str, str]:
        """Create a key; return ``(sid, secret)``. The secret is shown once and not kept here."""
        ...

    def revoke_api_key(self, sid: str) -> bool:
        """Revoke a key; ``False`` when no such key exists."""
        ...

    def create_invite(self, room: str, ttl_seconds: int, guests: int) -> str:
        """An absolute URL a guest opens to join ``room``, valid for ``ttl_seconds``, for at
        most ``guests`` different people."""
        ...

    def invite_lifetime(self) -> tuple[int, int]:
        """The shortest and longest lifetime of an invite, in seconds: the unit's one rule,
        which the page states and checks before :meth:`create_invite` would refuse."""
        ...

    # Status and simulated hardware -----------------------------------------------------
    def status_snapshot(self) -> Mapping[str, Any]:
        """JSON-able live state: ``role``, ``state``, ``rooms`` (each with ``name`` and
        ``participants``, each with ``identity`` and ``tracks``, each with ``kind``, ``name``,
        ``bitrate_kbps``), ``last_errors`` (list of strings), and anything else worth showing.
        """
        ...

    def simulated_buttons(self) -> Sequence[str]:
        """Buttons the status page may press (``"join"``, ``"mute"``); empty on real hardware."""
        ...

    def press(self, button: str) -> None:
        """Press a simulated button; raise ``ValueError`` for an unknown one."""
        ...

    # Export, import, factory reset -----------------------------------------------------
    def export_config(self, include_secrets: bool) -> dict[str, Any]:
        """The config as a nested dict for download; secrets left out unless asked."""
        ...

    def import_config(self, settings: Mapping[str, Any]) -> SaveResult:
        """Replace the config with an imported one (already validated); keep secrets the
        import leaves out. Unit identity (keys, TLS) is not part of an import.
        """
        ...

    def factory_reset(self) -> None:
        """Erase config, keys and recordings and restart unclaimed.

        ``provisioning`` erases its own admin state (password, sessions, TLS) itself.
        """
        ...

    # Operator tools: what the status page shows and does beyond the live snapshot --------
    async def doctor(self) -> Sequence[DoctorFinding]:
        """The unit's self-check (what ``edge-appliance doctor`` prints), probed off the loop."""
        ...

    async def camera_snapshot(self, image_format: str) -> bytes:
        """A still (``image_format`` one of :data:`SNAPSHOT_FORMATS`) of the camera as the
        call sends it; raise ``LookupError`` with a sentence when there is none to take."""
        ...

    def mic_level(self) -> Mapping[str, Any]:
        """``available`` (bool), ``peak`` (0 to 32767) and ``reason`` when not available."""
        ...

    def speaker_test(self) -> float:
        """Play a short test tone on the speaker; its length in seconds. ``LookupError`` with a
        sentence when there is no speaker."""
        ...

    def recent_logs(self, min_level: str, limit: int) -> Sequence[LogEntry]:
        """The newest ``limit`` log lines at ``min_level`` or above, oldest first, redacted."""
        ...

    async def end_room(self, room_sid: str) -> bool:
        """End a live room (its participants are disconnected); ``False`` if there is none."""
        ...

    async def remove_participant(self, room_sid: str, participant_sid: str) -> bool:
        """Remove a participant from a live room; ``False`` if there is no such participant."""
        ...

    def list_invites(self) -> Sequence[InviteInfo]:
        """Invites made on the page and not yet expired, newest first."""
        ...

    def revoke_invite(self, invite_id: str) -> bool:
        """Revoke an invite; ``False`` when there is no such invite."""
        ...

    def list_media(self) -> Sequence[MediaInfo]:
        """Recordings and compositions, newest first."""
        ...

    def delete_media(self, sid: str) -> bool:
        """Delete a recording's or composition's file; ``False`` when there is none to delete."""
        ...
