"""The configuration schema: one dataclass per TOML table, constraints in field metadata.

The schema is declarative so that three things derive from it: validation with messages that
name the key (``camera.layers[1].width: must be an integer from 16 to 1920, got 5000``), the
admin page's form (``field_specs``), and the example config. Metadata keys: ``help``, ``min``,
``max``, ``choices``, ``pattern``, ``max_len``, ``secret`` (never shown or exported unless
asked), ``live`` (applies without a restart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("kiosk", "field", "hub")
ROOM_TYPES = ("group", "group-small", "peer-to-peer", "go")
CAMERA_BACKENDS = ("auto", "picamera2", "v4l2", "synthetic", "none")
ENCODERS = ("auto", "hardware", "software")
PROFILES = ("baseline", "main", "high")
PIN_FACTORIES = ("auto", "mock")
LEAVE_ON = ("press", "long_press")
HOST_PORT = r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]*):[0-9]{1,5}$"
URL = r"^(https?://[^\s]+)?$"
ICE_URL = r"^(stun|stuns|turn|turns):[^\s]+$"


def meta(help: str, **kw: Any) -> dict[str, Any]:
    """Field metadata: the help text shown on the admin page plus constraints."""
    return {"help": help, **kw}


@dataclass
class UnitSection:
    """The unit itself."""

    name: str = field(
        default="edge-unit",
        metadata=meta("Unit name (also <name>.local)", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$"),
    )
    role: str = field(default="kiosk", metadata=meta("Role of this unit", choices=ROLES))


@dataclass
class HttpSection:
    """Where HTTP listens and how the unit is reached."""

    listen: str = field(default="0.0.0.0:8443", metadata=meta("HOST:PORT", pattern=HOST_PORT))
    public_url: str = field(
        default="", metadata=meta("Base URL used in links (empty: derived)", pattern=URL)
    )
    tls: bool = field(default=True, metadata=meta("Serve HTTPS with the unit's certificate"))
    redirect_port: int = field(
        default=0, metadata=meta("Plain-HTTP port redirecting to HTTPS (0: off)", min=0, max=65535)
    )


@dataclass
class RoomsSection:
    """Defaults for rooms created on this unit (Twilio's room parameters)."""

    type: str = field(default="group", metadata=meta("Room type", choices=ROOM_TYPES, live=True))
    max_participants: int = field(
        default=10, metadata=meta("Participants per room", min=1, max=50, live=True)
    )
    empty_room_timeout: int = field(
        default=5, metadata=meta("Minutes an emptied room stays open", min=1, max=1440, live=True)
    )
    unused_room_timeout: int = field(
        default=5, metadata=meta("Minutes an unjoined room stays open", min=1, max=1440, live=True)
    )
    max_participant_duration: int = field(
        default=14400,
        metadata=meta("Seconds a participant may stay", min=600, max=86400, live=True),
    )
    status_callback: str = field(
        default="", metadata=meta("Status callback URL for ad-hoc rooms", pattern=URL, live=True)
    )
    status_callback_method: str = field(
        default="POST", metadata=meta("Callback method", choices=("POST", "GET"), live=True)
    )


@dataclass
class MediaSection:
    """ICE servers and the UDP ports of the media path."""

    stun_servers: list[str] = field(
        default_factory=list, metadata=meta("stun: URLs (none: LAN only)", item_pattern=ICE_URL)
    )
    turn_servers: list[str] = field(
        default_factory=list, metadata=meta("turn: URLs", item_pattern=ICE_URL)
    )
    turn_username: str = field(default="", metadata=meta("TURN username", max_len=256))
    turn_credential: str = field(
        default="", metadata=meta("TURN credential", max_len=256, secret=True)
    )
    udp_port_min: int = field(
        default=0, metadata=meta("Lowest UDP port (0: any)", min=0, max=65535)
    )
    udp_port_max: int = field(
        default=0, metadata=meta("Highest UDP port (0: any)", min=0, max=65535)
    )


@dataclass
class KioskSection:
    """What the kiosk joins when its button is pressed."""

    room: str = field(default="meeting-room", metadata=meta("Room to join", pattern=r"^.{1,128}$"))
    identity: str = field(
        default="kiosk", metadata=meta("Participant identity", pattern=r"^.{1,121}$")
    )
    remote_url: str = field(
        default="", metadata=meta("Another unit's URL (empty: this unit)", pattern=URL)
    )
    remote_api_key_sid: str = field(
        default="", metadata=meta("API key SID on the other unit", pattern=r"^(SK[0-9a-f]{32})?$")
    )
    remote_api_key_secret: str = field(
        default="", metadata=meta("API key secret on the other unit", max_len=128, secret=True)
    )
    remote_token: str = field(
        default="", metadata=meta("Or a ready access token", max_len=8192, secret=True)
    )
    leave_on: str = field(
        default="press", metadata=meta("Leave on a second press or a long press", choices=LEAVE_ON)
    )


@dataclass
class LayerSection:
    """One encoded size of the camera picture."""

    name: str = field(default="high", metadata=meta("Layer name", pattern=r"^[a-z0-9_-]{1,16}$"))
    width: int = field(default=1280, metadata=meta("Width in pixels", min=16, max=1920))
    height: int = field(default=720, metadata=meta("Height in pixels", min=16, max=1080))
    bitrate: int = field(
        default=2_500_000, metadata=meta("Bits per second", min=50_000, max=10_000_000)
    )


def _default_layers() -> list[LayerSection]:
    return [
        LayerSection("high", 1280, 720, 2_500_000),
        LayerSection("low", 320, 180, 250_000),
    ]


@dataclass
class CameraSection:
    """Camera backend and its encoded layers."""

    backend: str = field(default="auto", metadata=meta("Camera backend", choices=CAMERA_BACKENDS))
    encoder: str = field(default="auto", metadata=meta("H.264 encoder", choices=ENCODERS))
    device: str = field(default="/dev/video0", metadata=meta("V4L2 device", max_len=256))
    framerate: int = field(default=30, metadata=meta("Frames per second", min=1, max=60))
    keyframe_interval: int = field(
        default=60, metadata=meta("Frames between keyframes", min=1, max=600)
    )
    profile: str = field(default="baseline", metadata=meta("H.264 profile", choices=PROFILES))
    layers: list[LayerSection] = field(
        default_factory=_default_layers,
        metadata=meta("Layers, largest first", min_items=1, max_items=3),
    )


@dataclass
class AudioSection:
    """ALSA devices."""

    enabled: bool = field(default=True, metadata=meta("Use microphone and speaker"))
    capture_device: str = field(default="default", metadata=meta("ALSA capture PCM", max_len=512))
    playback_device: str = field(default="default", metadata=meta("ALSA playback PCM", max_len=512))
    period_ms: int = field(default=20, metadata=meta("Period (ms)", choices=(10, 20)))
    mixer: str = field(default="", metadata=meta("ALSA mixer control for volume", max_len=64))
    volume: int = field(default=80, metadata=meta("Speaker volume %", min=0, max=100, live=True))


@dataclass
class GpioSection:
    """Buttons and LEDs (BCM pin numbers)."""

    pin_factory: str = field(
        default="auto", metadata=meta("gpiozero pin factory", choices=PIN_FACTORIES)
    )
    join_button: int = field(default=17, metadata=meta("Join/leave button pin", min=0, max=27))
    mute_button: int = field(default=27, metadata=meta("Mute button pin", min=0, max=27))
    status_led: int = field(default=22, metadata=meta("Status LED pin", min=0, max=27))
    mute_led: int = field(default=23, metadata=meta("Mute LED pin", min=0, max=27))
    active_low: bool = field(default=True, metadata=meta("Buttons pull to ground"))
    long_press_seconds: float = field(
        default=2.0, metadata=meta("Seconds for a long press", min=0.5, max=10.0)
    )


@dataclass
class ProvisioningSection:
    """The admin page and discovery."""

    mdns: bool = field(default=True, metadata=meta("Announce on the LAN (mDNS)", live=True))


@dataclass
class MetricsSection:
    """Prometheus metrics at ``/metrics``."""

    token: str = field(
        default="",
        metadata=meta(
            "Bearer token for scrapes from other hosts (empty: this machine only)",
            max_len=256,
            pattern=r"^[\x21-\x7e]*$",
            secret=True,
            live=True,
        ),
    )
    label_names: bool = field(
        default=False,
        metadata=meta("Label series by room name too (default: room SID only)", live=True),
    )


@dataclass
class Settings:
    """The whole configuration file."""

    unit: UnitSection = field(default_factory=UnitSection)
    http: HttpSection = field(default_factory=HttpSection)
    rooms: RoomsSection = field(default_factory=RoomsSection)
    media: MediaSection = field(default_factory=MediaSection)
    kiosk: KioskSection = field(default_factory=KioskSection)
    camera: CameraSection = field(default_factory=CameraSection)
    audio: AudioSection = field(default_factory=AudioSection)
    gpio: GpioSection = field(default_factory=GpioSection)
    provisioning: ProvisioningSection = field(default_factory=ProvisioningSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
