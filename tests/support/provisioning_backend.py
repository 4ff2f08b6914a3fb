"""A hand-written in-memory test backend for the provisioning pages.

Not the appliance: a small stand-in implementing ``provisioning.backend.Backend`` with a
schema covering every setting the admin page edits, a TOML config file written atomically
(so tests can read the file the page changed), API keys that a tiny REST endpoint checks,
and simulated buttons.
"""

from __future__ import annotations

import base64
import copy
import logging
import secrets
import struct
import time
import tomllib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import tomli_w
from aiohttp import web

from edge_common.atomic import atomic_write
from edge_common.logbuffer import LogBuffer
from provisioning.backend import (
    Address,
    ApiKeyInfo,
    Backend,
    DoctorFinding,
    FieldSpec,
    InviteInfo,
    LogEntry,
    MediaInfo,
    SaveResult,
)
from provisioning.settings_form import MISSING, get_path

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9 _-]{0,62}"


def _layer(i: int) -> list[FieldSpec]:
    sec = f"Camera layer {i + 1}"
    base = f"camera.layers.{i}"
    return [
        FieldSpec(f"{base}.width", "Width (px)", "int", sec, minimum=64, maximum=1920),
        FieldSpec(f"{base}.height", "Height (px)", "int", sec, minimum=64, maximum=1080),
        FieldSpec(f"{base}.fps", "Frame rate", "int", sec, minimum=1, maximum=60),
        FieldSpec(f"{base}.bitrate_kbps", "Bitrate (kbit/s)", "int", sec, minimum=50, maximum=8000),
    ]


SCHEMA: list[FieldSpec] = [
    FieldSpec(
        "unit.name",
        "Unit name",
        "str",
        "Unit",
        pattern=NAME_PATTERN,
        pattern_help="Letters, digits, spaces, - and _; start with a letter or digit.",
        max_length=63,
    ),
    FieldSpec("unit.role", "Role", "choice", "Unit", choices=("kiosk", "field", "hub")),
    FieldSpec("room.name", "Room name", "str", "Room", pattern=NAME_PATTERN, max_length=63),
    FieldSpec(
        "room.max_participants", "Max participants", "int", "Room", minimum=2, maximum=16, live=True
    ),
    FieldSpec(
        "room.empty_timeout_s",
        "Close an empty room after (s)",
        "int",
        "Room",
        minimum=0,
        maximum=86400,
        live=True,
    ),
    FieldSpec(
        "room.unused_timeout_s",
        "Close an unused room after (s)",
        "int",
        "Room",
        minimum=0,
        maximum=86400,
        live=True,
    ),
    FieldSpec("kiosk.join", "Kiosk joins", "choice", "Kiosk", choices=("own", "remote")),
    FieldSpec("kiosk.remote_url", "Remote unit URL", "url", "Kiosk", required=False),
    FieldSpec(
        "kiosk.remote_api_key",
        "Remote API key SID",
        "str",
        "Kiosk",
        required=False,
        pattern=r"[A-Za-z0-9]{0,64}",
    ),
    FieldSpec(
        "kiosk.remote_api_secret",
        "Remote API key secret",
        "str",
        "Kiosk",
        required=False,
        secret=True,
    ),
    FieldSpec(
        "camera.backend",
        "Camera backend",
        "choice",
        "Camera",
        choices=("auto", "picamera2", "v4l2", "synthetic"),
    ),
    *_layer(0),
    *_layer(1),
    FieldSpec("audio.capture_device", "Microphone (ALSA)", "str", "Audio", max_length=128),
    FieldSpec("audio.playback_device", "Speaker (ALSA)", "str", "Audio", max_length=128),
    FieldSpec("audio.volume", "Volume (%)", "int", "Audio", minimum=0, maximum=100, live=True),
    FieldSpec("gpio.join_button", "Join button pin", "int", "GPIO", minimum=0, maximum=27),
    FieldSpec("gpio.mute_button", "Mute button pin", "int", "GPIO", minimum=0, maximum=27),
    FieldSpec("gpio.join_led", "Join LED pin", "int", "GPIO", minimum=0, maximum=27),
    FieldSpec("gpio.mute_led", "Mute LED pin", "int", "GPIO", minimum=0, maximum=27),
    FieldSpec(
        "network.stun_servers",
        "STUN servers (one per line)",
        "list",
        "Network",
        required=False,
        pattern=r"stuns?:[A-Za-z0-9.:\[\]-]{1,200}",
        pattern_help="Use stun:host:port.",
    ),
    FieldSpec(
        "network.turn_servers",
        "TURN servers (one per line)",
        "list",
        "Network",
        required=False,
        pattern=r"turns?:[A-Za-z0-9.:\[\]?=_-]{1,200}",
        pattern_help="Use turn:host:port.",
    ),
    FieldSpec("network.turn_username", "TURN username", "str", "Network", required=False),
    FieldSpec(
        "network.turn_credential", "TURN credential", "str", "Network", required=False, secret=True
    ),
    FieldSpec(
        "network.udp_port_min", "UDP ports from", "int", "Network", minimum=1024, maximum=65535
    ),
    FieldSpec(
        "network.udp_port_max", "UDP ports to", "int", "Network", minimum=1024, maximum=65535
    ),
    FieldSpec(
        "network.status_callback_url", "Status callback URL", "url", "Network", required=False
    ),
    FieldSpec("discovery.mdns", "Announce on the LAN (mDNS)", "bool", "Network", live=True),
]


def default_config(name: str = "kiosk-1") -> dict[str, Any]:
    """A complete valid config."""
    return {
        "unit": {"name": name, "role": "kiosk"},
        "room": {
            "name": "lobby",
            "max_participants": 4,
            "empty_timeout_s": 300,
            "unused_timeout_s": 600,
        },
        "kiosk": {
            "join": "own",
            "remote_url": "",
            "remote_api_key": "",
            "remote_api_secret": "remote-secret-value-XYZ",
        },
        "camera": {
            "backend": "synthetic",
            "layers": [
                {"width": 1280, "height": 720, "fps": 30, "bitrate_kbps": 2500},
                {"width": 640, "height": 360, "fps": 30, "bitrate_kbps": 600},
            ],
        },
        "audio": {"capture_device": "default", "playback_device": "default", "volume": 80},
        "gpio": {"join_button": 17, "mute_button": 27, "join_led": 22, "mute_led": 23},
        "network": {
            "stun_servers": ["stun:stun.example.org:3478"],
            "turn_servers": [],
            "turn_username": "",
            "turn_credential": "turn-secret-value-ABC",
            "udp_port_min": 40000,
            "udp_port_max": 40100,
            "status_callback_url": "",
        },
        "discovery": {"mdns": True},
    }


class HandWrittenTestBackend:
    """In-memory stand-in for the appliance, with the config in a real TOML file."""

    def __init__(self, config_path: Path, *, name: str = "kiosk-1") -> None:
        self.config_path = config_path
        self.keys: dict[str, tuple[str, str]] = {}
        self.presses: list[str] = []
        self.muted = False
        self.joined = False
        self.restarts = 0
        #: What the pages are told about the next start (this backend has no HTTPS setting).
        self.next_address = Address(tls=False)
        self.resets = 0
        self.live: dict[str, Any] = {}  # what the "daemon" applied live
        self.rooms: dict[str, dict[str, str]] = {"RM1": {"PA1": "kiosk", "PA2": "<i>guest</i>"}}
        self.room_names = {"RM1": "lobby"}
        self.removed: list[tuple[str, str]] = []
        self.ended: list[str] = []
        self.invites: dict[str, InviteInfo] = {}
        self.media: dict[str, MediaInfo] = {}
        self.tones = 0
        #: Log lines of the "daemon": records of this backend's own ``unit.*`` logger.
        self.log_buffer = LogBuffer(capacity=50)
        self.logger = logging.getLogger("unit." + secrets.token_hex(4))
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self.log_buffer)
        self._write(default_config(name))
        self.live = self._live_values(self.load_settings())
        self.started = self.load_settings()  # what the "daemon" runs with until a restart

    # settings
    def _write(self, data: Mapping[str, Any]) -> None:
        atomic_write(self.config_path, tomli_w.dumps(dict(data)), mode=0o600)

    def _live_values(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {s.path: get_path(data, s.path) for s in SCHEMA if s.live}

    def settings_schema(self) -> Sequence[FieldSpec]:
        return SCHEMA

    def load_settings(self) -> dict[str, Any]:
        return tomllib.loads(self.config_path.read_text())

    def validate_settings(self, settings: Mapping[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        net = settings.get("network", {})
        if net.get("udp_port_min", 0) > net.get("udp_port_max", 0):
            errors["network.udp_port_max"] = "Must not be below the start of the range."
        pins = settings.get("gpio", {})
        seen: dict[Any, str] = {}
        for key in ("join_button", "mute_button", "join_led", "mute_led"):
            if pins.get(key) in seen:
                errors[f"gpio.{key}"] = f"Pin already used by {seen[pins[key]]}."
            seen[pins.get(key)] = key
        kiosk = settings.get("kiosk", {})
        if kiosk.get("join") == "remote" and not kiosk.get("remote_url"):
            errors["kiosk.remote_url"] = "A remote room needs the other unit's URL."
        return errors

    def save_settings(self, settings: Mapping[str, Any]) -> SaveResult:
        old = self.load_settings()
        changed = [s for s in SCHEMA if get_path(old, s.path) != get_path(settings, s.path)]
        self._write(settings)
        self.live = self._live_values(settings)
        return SaveResult(
            applied_live=[s.path for s in changed if s.live],
            needs_restart=[s.path for s in changed if not s.live],
        )

    def pending_restart(self) -> Sequence[str]:
        saved = self.load_settings()
        return [
            s.path
            for s in SCHEMA
            if not s.live and get_path(saved, s.path) != get_path(self.started, s.path)
        ]

    def request_restart(self) -> None:
        self.restarts += 1
        self.started = self.load_settings()

    def address_after_restart(self) -> Address:
        return self.next_address

    # keys
    def list_api_keys(self) -> Sequence[ApiKeyInfo]:
        return [ApiKeyInfo(sid, name, "today") for sid, (name, _) in self.keys.items()]

    def create_api_key(self, name: str) -> tuple[str, str]:
        sid = "SK" + secrets.token_hex(16)
        secret = secrets.token_urlsafe(24)
        self.keys[sid] = (name, secret)
        return sid, secret

    def revoke_api_key(self, sid: str) -> bool:
        return self.keys.pop(sid, None) is not None

    def check_key(self, sid: str, secret: str) -> bool:
        entry = self.keys.get(sid)
        return entry is not None and secrets.compare_digest(entry[1], secret)

    def create_invite(self, room: str, ttl_seconds: int, guests: int) -> str:
        token = secrets.token_urlsafe(8)
        invite_id = secrets.token_hex(8)
        self.invites[invite_id] = InviteInfo(
            invite_id, room, guests, 0, time.time() + ttl_seconds, "today"
        )
        return f"https://kiosk-1.local/join/{room}?t={token}&ttl={ttl_seconds}&guests={guests}"

    def invite_lifetime(self) -> tuple[int, int]:
        return 5 * 60, 7 * 24 * 3600

    def list_invites(self) -> Sequence[InviteInfo]:
        return list(reversed(self.invites.values()))

    def revoke_invite(self, invite_id: str) -> bool:
        invite = self.invites.get(invite_id)
        if invite is None:
            return False
        self.invites[invite_id] = InviteInfo(
            invite.invite_id, invite.room, invite.guests, invite.used, invite.expires, "", True
        )
        return True

    def list_media(self) -> Sequence[MediaInfo]:
        return list(reversed(self.media.values()))

    def delete_media(self, sid: str) -> bool:
        item = self.media.get(sid)
        if item is None or item.status == "deleted":
            return False
        self.media[sid] = replace(item, status="deleted", url="")
        return True

    # operator tools
    async def doctor(self) -> Sequence[DoctorFinding]:
        return [
            DoctorFinding("camera", "synthetic", True, "testsrc2 <b>pattern</b>"),
            DoctorFinding("audio in", "alsa default", False, "no sound card"),
        ]

    async def camera_snapshot(self, image_format: str) -> bytes:
        if not self.joined:
            raise LookupError("No camera layer is running.")
        return tiny_png()

    def mic_level(self) -> Mapping[str, Any]:
        if not self.joined:
            return {"available": False, "peak": 0, "reason": "Captured only in a call."}
        return {"available": True, "peak": 12000, "reason": "", "muted": self.muted}

    def speaker_test(self) -> float:
        self.tones += 1
        return 1.0

    def recent_logs(self, min_level: str, limit: int) -> Sequence[LogEntry]:
        return [
            LogEntry(line.time, line.level, line.logger, line.message)
            for line in self.log_buffer.lines(min_level, limit)
        ]

    async def end_room(self, room_sid: str) -> bool:
        if self.rooms.pop(room_sid, None) is None:
            return False
        self.ended.append(room_sid)
        return True

    async def remove_participant(self, room_sid: str, participant_sid: str) -> bool:
        if self.rooms.get(room_sid, {}).pop(participant_sid, None) is None:
            return False
        self.removed.append((room_sid, participant_sid))
        return True

    # status
    def status_snapshot(self) -> Mapping[str, Any]:
        return {
            "role": self.load_settings()["unit"]["role"],
            "state": "in-room" if self.joined else "idle",
            "muted": self.muted,
            "missing": ["microphone"],
            "state_text": (
                "In a call" + (" — muted" if self.muted else "") if self.joined else "Idle"
            )
            + " (without microphone)",
            "rooms": [
                {
                    "sid": sid,
                    "name": self.room_names[sid],
                    "participants": [
                        {
                            "sid": psid,
                            "identity": identity,
                            "tracks": [
                                {"kind": "video", "name": "camera", "bitrate_kbps": 2400},
                                {"kind": "audio", "name": "mic", "bitrate_kbps": 32},
                            ],
                        }
                        for psid, identity in people.items()
                    ],
                }
                for sid, people in self.rooms.items()
            ],
            "last_errors": ["<b>camera</b> restarted"],
        }

    def simulated_buttons(self) -> Sequence[str]:
        return ("join", "mute")

    def press(self, button: str) -> None:
        if button not in ("join", "mute"):
            raise ValueError(button)
        self.presses.append(button)
        if button == "join":
            self.joined = not self.joined
        else:
            self.muted = not self.muted

    # export / import / reset
    def export_config(self, include_secrets: bool) -> dict[str, Any]:
        data = copy.deepcopy(self.load_settings())
        if not include_secrets:
            for spec in SCHEMA:
                if spec.secret:
                    section, key = spec.path.split(".")
                    data.get(section, {}).pop(key, None)
        return data

    def import_config(self, settings: Mapping[str, Any]) -> SaveResult:
        merged = copy.deepcopy(dict(settings))
        current = self.load_settings()
        for spec in SCHEMA:
            if spec.secret and get_path(merged, spec.path) is MISSING:
                section, key = spec.path.split(".")
                merged.setdefault(section, {})[key] = current[section].get(key, "")
        return self.save_settings(merged)

    def factory_reset(self) -> None:
        self.resets += 1
        self.keys.clear()
        self._write(default_config())


def tiny_png() -> bytes:
    """A valid 2x2 grey PNG (a stand-in still)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80\x80\x80" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def rest_app_routes(app: web.Application, backend: HandWrittenTestBackend) -> None:
    """A Twilio-shaped ``GET /v1/Rooms`` guarded by HTTP Basic with API keys, for tests."""

    async def rooms(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                sid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                sid, secret = "", ""
            if backend.check_key(sid, secret):
                return web.json_response({"rooms": []})
        return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)

    app.router.add_get("/v1/Rooms", rooms)


def as_backend(b: HandWrittenTestBackend) -> Backend:
    """Static proof (under mypy) that the test backend implements the protocol."""
    return b
