"""Adapts the running appliance to ``provisioning.Backend``: what the admin page reads and does.

``provisioning`` knows nothing of the SFU or the devices; everything it shows or changes goes
through here. The settings form is derived from the config schema (``appliance.settings``),
so a new config key appears on the page without touching it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from edge_sfu.identity import IDENTITY_FILE
from edge_sfu.invites import (
    DEFAULT_INVITE_GUESTS,
    MAX_INVITE_TTL,
    MIN_INVITE_TTL,
    create_invite,
    verify_invite,
)
from edge_sfu.keys import KEYS_FILE
from edge_sfu.rest.recordings import signed_media_path
from edge_sfu.rooms import events as room_events
from edge_sfu.rooms.model import utcnow
from edge_sfu.store import DB_FILE, CompositionFilter, RecordingFilter, fmt_time
from provisioning.backend import (
    Address,
    ApiKeyInfo,
    DoctorFinding,
    FieldKind,
    FieldSpec,
    InviteInfo,
    LogEntry,
    MediaInfo,
    SaveResult,
)

from .config import (
    ConfigError,
    field_specs,
    layer_specs,
    load_config,
    parse_settings,
    save_config,
    secret_keys,
    settings_to_dict,
    validate_settings,
)
from .mapping import listen_address, room_defaults
from .settings import SECTIONS, Settings
from .state import DaemonState
from .status import status_summary

log = logging.getLogger(__name__)

#: How many recordings (and compositions) the recordings page lists.
MEDIA_LISTED = 200


def _field(spec: dict[str, Any]) -> FieldSpec:
    tp = spec["type"]
    kind: FieldKind = "str"
    choices: tuple[str, ...] = ()
    if tp == "bool":
        kind = "bool"
    elif tp in ("int", "float"):
        kind = tp
    elif tp == "list[str]":
        kind = "list"
    if "choices" in spec and tp == "str":
        kind, choices = "choice", tuple(str(c) for c in spec["choices"])
    numeric = [c for c in spec.get("choices", ()) if isinstance(c, int)]
    pattern = spec.get("pattern") or spec.get("item_pattern") or ""
    rule = str(spec.get("rule", ""))
    return FieldSpec(
        path=spec["key"],
        label=spec["label"],
        kind=kind,
        section=spec["section_title"],
        section_help=SECTIONS[spec["section"].split(".", 1)[0]][1],
        help=spec["help"],
        choices=choices,
        minimum=spec.get("min", min(numeric) if numeric else None),
        maximum=spec.get("max", max(numeric) if numeric else None),
        max_length=spec.get("max_len", 512),
        required=False,
        secret=bool(spec.get("secret")),
        live=bool(spec.get("live")),
        pattern=pattern.removeprefix("^").removesuffix("$") if pattern else "",
        pattern_help=f"Use {rule}." if rule else "",
    )


class ApplianceBackend:
    """The admin page's view of the running daemon."""

    def __init__(self, state: DaemonState, apply_live: Callable[[set[str]], None]) -> None:
        self._state = state
        self._apply_live = apply_live

    # -- settings ----------------------------------------------------------------------------

    def settings_schema(self) -> Sequence[FieldSpec]:
        """Every config key as a form field; one group of fields per camera layer."""
        fields: list[FieldSpec] = []
        for spec in field_specs():
            if spec["type"] != "list[table]":
                fields.append(_field(spec))
                continue
            for i, _layer in enumerate(self._saved().camera.layers):
                for layer_spec in layer_specs():
                    f = _field(layer_spec)
                    path = f"camera.layers.{i}.{f.path.rsplit('.', 1)[-1]}"
                    label = f"Layer {i + 1}: {f.label[0].lower()}{f.label[1:]}"
                    # Not required: an import merges onto the saved file, so a file without
                    # [[camera.layers]] keeps the saved ones; the schema judges empty values.
                    fields.append(replace(f, path=path, label=label))
        return fields

    def _saved(self) -> Settings:
        """The config as saved: what the next start will run with.

        The page and the export show this, never the settings in force, so a change that waits
        for a restart is neither hidden nor reverted by the next save.
        """
        try:
            return load_config(self._state.unit.config_path)
        except ConfigError as exc:  # edited by hand into something invalid since the start
            log.warning("saved config unreadable, showing the settings in force: %s", exc)
            return self._state.settings

    def load_settings(self) -> dict[str, Any]:
        """The config as saved (changes pending a restart included)."""
        return settings_to_dict(self._saved())

    def pending_restart(self) -> Sequence[str]:
        """Keys whose saved value is not in force yet (they wait for a restart)."""
        return sorted(_changed(settings_to_dict(self._state.settings), self.load_settings()))

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, str]:
        """The config schema's own checks (cross-field ones included), keyed by form path."""
        problems = validate_settings(_plain(settings))
        return {re.sub(r"\[(\d+)\]", r".\1", key): msg for key, msg in problems.items()}

    def save_settings(self, settings: Mapping[str, Any]) -> SaveResult:
        """Merge ``settings`` onto the saved config and write it atomically.

        Keys ``settings`` leaves out keep their saved value. What can apply live applies now;
        the result names the keys that wait for a restart (from this save or an earlier one).
        """
        merged = settings_to_dict(self._saved())
        for section, table in _plain(settings).items():
            if isinstance(table, dict) and isinstance(merged.get(section), dict):
                merged[section].update(table)
            else:
                merged[section] = table
        new = parse_settings(merged, source="admin page")
        save_config(self._state.unit.config_path, new)
        changed = _changed(settings_to_dict(self._state.settings), settings_to_dict(new))
        live_keys = {s["key"] for s in field_specs() if s.get("live")}
        live = {k for k in changed if k in live_keys}
        self._state.settings = _merge_live(self._state, new, live)
        self._apply_live(live)
        log.info("settings saved: %d differ from those in force, %d live", len(changed), len(live))
        return SaveResult(sorted(live), sorted(changed - live))

    def request_restart(self) -> None:
        """Restart the daemon once the current response has gone out."""
        self._state.restart_requested = True
        self._state.request_stop()

    def address_after_restart(self) -> Address:
        """HTTPS or not and the port, as saved: what the next start listens with."""
        http = self._saved().http
        _, port = listen_address(http.listen)
        return Address(tls=http.tls, port=port, public_url=http.public_url)

    # -- keys and invites --------------------------------------------------------------------

    def list_api_keys(self) -> Sequence[ApiKeyInfo]:
        """Keys the REST API accepts (never their secrets)."""
        keys = self._state.unit.keys
        return [ApiKeyInfo(k.sid, k.friendly_name, k.date_created) for k in keys.list()]

    def create_api_key(self, name: str) -> tuple[str, str]:
        """A new key; the secret is returned once."""
        key = self._state.unit.keys.create(name)
        return key.sid, key.secret

    def revoke_api_key(self, sid: str) -> bool:
        """Revoke a key; False when there is no such key."""
        keys = self._state.unit.keys
        if keys.get(sid) is None or sid == self._signing_sid():
            return False
        keys.revoke(sid)
        return True

    def _signing_sid(self) -> str:
        return self._state.unit.identity.signing_key.sid

    def create_invite(
        self, room: str, ttl_seconds: int, guests: int = DEFAULT_INVITE_GUESTS
    ) -> str:
        """A guest link to ``room`` for at most ``guests`` people."""
        token = self._state.unit.identity.auth_token
        invite = create_invite(token, room, ttl=ttl_seconds, guests=guests)
        if self._state.sfu is not None:  # recorded so the page can list and revoke it
            made = verify_invite(invite, token)
            self._state.sfu.store.record_invite(made.invite_id, room, guests, made.expires_at)
        return f"{self._state.base_url()}/join/{quote(room, safe='')}?invite={invite}"

    def invite_lifetime(self) -> tuple[int, int]:
        """The invite lifetime rule of ``edge_sfu.invites``, in seconds."""
        return MIN_INVITE_TTL, MAX_INVITE_TTL

    def list_invites(self) -> Sequence[InviteInfo]:
        """Invites made on the page that have not expired, newest first."""
        if self._state.sfu is None:
            return []
        return [
            InviteInfo(
                i.invite_id, i.room, i.guests, i.used, i.expires, i.date_created, bool(i.revoked)
            )
            for i in self._state.sfu.store.list_invites(utcnow())
        ]

    def revoke_invite(self, invite_id: str) -> bool:
        """Revoke an invite: redeeming it is refused (20110) from now on."""
        if self._state.sfu is None or not self._state.sfu.store.revoke_invite(invite_id, utcnow()):
            return False
        log.info("invite %s revoked on the admin page", invite_id)
        return True

    # -- recordings --------------------------------------------------------------------------

    def list_media(self) -> Sequence[MediaInfo]:
        """The latest recordings and compositions, newest first, with ten-minute links."""
        sfu = self._state.sfu
        if sfu is None:
            return []
        token = sfu.identity.auth_token
        items: list[tuple[str, MediaInfo]] = []
        for rec in sfu.store.find_recordings(RecordingFilter(), MEDIA_LISTED, 0):
            url = signed_media_path(token, rec.sid, 600) if rec.status == "completed" else ""
            stamp = fmt_time(rec.date_created) or ""
            items.append((stamp, MediaInfo(
                rec.sid, "recording", self._room_name(rec.room_sid), rec.track_name,
                rec.status, stamp, rec.duration, rec.size, url,
            )))  # fmt: skip
        for comp in sfu.store.find_compositions(CompositionFilter(), MEDIA_LISTED, 0):
            url = signed_media_path(token, comp.sid, 600) if comp.status == "completed" else ""
            stamp = fmt_time(comp.date_created) or ""
            items.append((stamp, MediaInfo(
                comp.sid, "composition", self._room_name(comp.room_sid),
                f"{comp.format} {comp.resolution}", comp.status, stamp, comp.duration,
                comp.size, url,
            )))  # fmt: skip
        return [info for _, info in sorted(items, key=lambda item: item[0], reverse=True)]

    def _room_name(self, room_sid: str) -> str:
        sfu = self._state.sfu
        room = sfu.rooms.find_room(room_sid) if sfu is not None else None
        return room.unique_name if room is not None else room_sid

    def delete_media(self, sid: str) -> bool:
        """Delete a finished recording's or composition's file (the item stays, deleted)."""
        sfu = self._state.sfu
        if sfu is None:
            return False
        rec = sfu.store.get_recording(sid)
        if rec is not None and rec.status in ("completed", "failed"):
            sfu.recordings.delete_media(rec)
            return True
        comp = sfu.store.get_composition(sid)
        if comp is not None and comp.status in ("completed", "failed"):
            sfu.compositions.delete(comp)
            return True
        return False

    # -- status ------------------------------------------------------------------------------

    def status_snapshot(self) -> Mapping[str, Any]:
        """Role, state, rooms with participants and tracks, errors, media counters."""
        return status_summary(self._state)

    # -- operator tools ----------------------------------------------------------------------

    async def doctor(self) -> Sequence[DoctorFinding]:
        """``edge-appliance doctor``'s rows, probed in a thread, then what the daemon found
        missing or failed since it started (a device that vanished after the probe)."""
        from hardware.doctor import collect

        from .mapping import audio_spec, camera_spec

        s = self._state.settings
        rows = await asyncio.to_thread(collect, camera_spec(s), audio_spec(s), s.gpio.pin_factory)
        found = [DoctorFinding(r.part, r.backend, r.ok, r.detail) for r in rows]
        found += [
            DoctorFinding(part, "running daemon", False, reason)
            for part, reason in sorted(self._state.status.degraded.items())
        ]
        return found

    async def camera_snapshot(self, image_format: str) -> bytes:
        """A still of the smallest camera layer the call is encoding now."""
        operator = self._state.operator
        if operator is None:
            raise LookupError("This unit's role has no camera.")
        return await operator.snapshot(image_format)

    def mic_level(self) -> Mapping[str, Any]:
        """The microphone's peak from the capture path."""
        operator = self._state.operator
        if operator is None:
            return {"available": False, "peak": 0, "reason": "This unit's role has no microphone."}
        return operator.mic_level()

    def speaker_test(self) -> float:
        """A short tone through the speaker path."""
        operator = self._state.operator
        if operator is None:
            raise LookupError("This unit's role has no speaker.")
        return operator.test_tone()

    def recent_logs(self, min_level: str, limit: int) -> Sequence[LogEntry]:
        """The daemon's last log lines (redacted as they were kept)."""
        return [
            LogEntry(line.time, line.level, line.logger, line.message)
            for line in self._state.log_buffer.lines(min_level, limit)
        ]

    async def end_room(self, room_sid: str) -> bool:
        """End a room as REST's ``Status=completed`` does: everyone sees 53118."""
        sfu = self._state.sfu
        if sfu is None or sfu.rooms.live_room(room_sid) is None:
            return False
        await sfu.rooms.complete_room(room_sid)
        log.info("room %s ended on the admin page", room_sid)
        return True

    async def remove_participant(self, room_sid: str, participant_sid: str) -> bool:
        """Remove a participant as REST's ``Status=disconnected`` does: it sees 53204."""
        sfu = self._state.sfu
        room = None if sfu is None else sfu.rooms.live_room(room_sid)
        if sfu is None or room is None:
            return False
        participant = room.participants.get(participant_sid)
        if participant is None or not participant.connected:
            return False
        await sfu.rooms.disconnect(participant_sid, room_events.REMOVED_BY_REST)
        log.info(
            "participant %s (%s) removed from room %s on the admin page",
            participant_sid,
            participant.identity,
            room.unique_name,
        )
        return True

    def simulated_buttons(self) -> Sequence[str]:
        """Join and mute, when the buttons are simulated (mock pins) and the role has them."""
        simulated = self._state.settings.gpio.pin_factory == "mock" or not self._state.unit.on_pi
        return ("join", "mute") if simulated and self._state.press_handler else ()

    def press(self, button: str) -> None:
        """Press a simulated button."""
        if button not in ("join", "mute") or self._state.press_handler is None:
            raise ValueError(f"no button {button!r}")
        self._state.press_handler(button, False)

    # -- export, import, reset ---------------------------------------------------------------

    def export_config(self, include_secrets: bool) -> dict[str, Any]:
        """The saved config for download."""
        return settings_to_dict(self._saved(), include_secrets=include_secrets)

    def import_config(self, settings: Mapping[str, Any]) -> SaveResult:
        """Replace the config; secrets the import leaves empty keep their saved value."""
        merged = _plain(settings)
        saved = self.load_settings()
        for section, key in secret_keys():
            incoming = merged.get(section)
            if isinstance(incoming, dict) and incoming.get(key, "") == "":
                incoming[key] = saved[section][key]
        return self.save_settings(merged)

    def factory_reset(self) -> None:
        """Erase config, keys, history and identity; restart as a new, unclaimed unit.

        Everything the SFU keeps in the data directory goes: a unit reset this way starts like
        one never used (no rooms of the old account, no callbacks to retry with the new auth
        token). ``provisioning`` erases its own files (admin password, TLS) itself. The open
        database is unlinked, not emptied: what the daemon writes to it until the restart is
        lost with it.
        """
        for path in [self._state.unit.config_path, *unit_data_files(self._state.unit.data_dir)]:
            with contextlib.suppress(FileNotFoundError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        log.warning("factory reset: configuration, keys, history and identity erased")
        self.request_restart()


def unit_data_files(data_dir: Path) -> list[Path]:
    """The files of the data directory that make a unit this unit: identity, API keys, and the
    database (room history with its recording rules, guest names, the callback outbox).
    """
    names = [IDENTITY_FILE, KEYS_FILE, KEYS_FILE + ".lock"]
    return [data_dir / name for name in names] + sorted(data_dir.glob(DB_FILE + "*"))


def _plain(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A plain nested dict, with the form's numeric choices turned back into numbers."""
    out: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in settings.items()}
    for spec in field_specs():
        section, key = spec["key"].split(".", 1)
        table = out.get(section)
        if isinstance(table, dict) and spec["type"] == "int" and isinstance(table.get(key), str):
            with contextlib.suppress(ValueError):
                table[key] = int(table[key])
    return out


def _changed(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    return {
        f"{section}.{key}"
        for section, table in new.items()
        for key, value in table.items()
        if old.get(section, {}).get(key) != value
    }


def _merge_live(state: DaemonState, new: Any, live: set[str]) -> Any:
    """The settings in force: the old ones with only the live-applied keys taken from ``new``."""
    current = state.settings
    for key in live:
        section, name = key.split(".", 1)
        table = replace(getattr(current, section), **{name: getattr(getattr(new, section), name)})
        current = replace(current, **{section: table})
    return current


def apply_live_settings(state: DaemonState, keys: set[str]) -> None:
    """Put live-applicable changes into effect at once."""
    if state.sfu is not None and any(k.startswith("rooms.") for k in keys):
        state.sfu.rooms.defaults = room_defaults(state.settings)
    for hook in state.live_hooks:
        hook(keys)
