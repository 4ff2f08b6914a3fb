"""The configuration schema: one dataclass per TOML table, constraints in field metadata.

The schema is declarative so that three things derive from it: validation with messages that
name the key (``camera.layers[1].width: must be an integer from 16 to 1920, got 5000``), the
admin page's form (``field_specs``), and the example config. Metadata keys: ``label`` (the
field's name on the page), ``help`` (one line on the page and in docs/configuration.md),
``min``, ``max``, ``choices``, ``pattern`` with ``rule`` (the pattern said in words, for
messages), ``max_len``, ``secret`` (never shown or exported unless asked), ``live`` (applies
without a restart). ``SECTIONS`` titles each table.
"""

from __future__ import annotations

import dataclasses
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
HOST_PORT_RULE = "HOST:PORT, such as 0.0.0.0:8443 or [::]:8443"
URL = r"^(https?://[^\s]+)?$"
URL_RULE = "an http:// or https:// address without spaces, or empty"
ICE_URL = r"^(stun|stuns|turn|turns):[^\s]+$"
UNIT_NAME_RULE = "lowercase letters a-z, digits and hyphens, 1 to 63 characters, no hyphen first"
ICE_URL_RULE = "a stun:, stuns:, turn: or turns: address without spaces"

#: Title and one-line description of each table, in the order the admin page shows them.
SECTIONS: dict[str, tuple[str, str]] = {
    "unit": ("Unit", "What the unit is called and what it does."),
    "http": ("Web server", "Where the pages listen and whether they use HTTPS."),
    "rooms": ("Room defaults", "Rules for rooms created on this unit."),
    "media": ("Media and network", "STUN/TURN servers and the UDP ports media uses."),
    "whip": (
        "WHIP and WHEP",
        "Encoders publishing and players playing over HTTP (docs/whip-whep.md).",
    ),
    "recordings": (
        "Recordings",
        "How much of the disk recordings may use, and how long they are kept.",
    ),
    "kiosk": ("Kiosk", "The room the join button joins, here or on another unit."),
    "field": ("Field unit", "How a field unit reaches its hub, and what it does while it cannot."),
    "hub": ("Hub", "The room field units stream into, its multi-view page and recording."),
    "camera": ("Camera", "Camera, encoder and the sizes the picture is sent in."),
    "audio": ("Audio", "Microphone, speaker and volume."),
    "gpio": ("Buttons and LEDs", "Which pins the buttons and lights are wired to."),
    "provisioning": ("Discovery", "How the unit makes itself known on the network."),
    "metrics": (
        "Metrics",
        "Prometheus metrics at /metrics: who may read them and how they are labelled.",
    ),
}


def meta(label: str, help: str, **kw: Any) -> dict[str, Any]:
    """Field metadata: the label and one line of help shown on the admin page, constraints.

    A ``pattern`` needs a ``rule``: the same constraint in words, which messages show.
    """
    assert "pattern" not in kw or "rule" in kw, label
    return {"label": label, "help": help, **kw}


@dataclass
class UnitSection:
    """The unit itself."""

    name: str = field(
        default="edge-unit",
        metadata=meta(
            "Unit name",
            "Shown on the admin pages; on the LAN the unit is this name followed by .local.",
            pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
            rule=UNIT_NAME_RULE,
        ),
    )
    role: str = field(
        default="kiosk",
        metadata=meta(
            "Role",
            "kiosk: a meeting-room unit with buttons; field: streams from start; hub: rooms only.",
            choices=ROLES,
        ),
    )


@dataclass
class HttpSection:
    """Where HTTP listens and how the unit is reached."""

    listen: str = field(
        default="0.0.0.0:8443",
        metadata=meta(
            "Listen address",
            "Address and port the web server listens on, as HOST:PORT (0.0.0.0 for all).",
            pattern=HOST_PORT,
            rule=HOST_PORT_RULE,
        ),
    )
    public_url: str = field(
        default="",
        metadata=meta(
            "Public address",
            "Base URL put in invite and join links; empty: derived from the unit name and port.",
            pattern=URL,
            rule=URL_RULE,
        ),
    )
    tls: bool = field(
        default=True,
        metadata=meta(
            "HTTPS",
            "Serve the pages over HTTPS with the unit's certificate (cameras need it in browsers).",
        ),
    )
    redirect_port: int = field(
        default=0,
        metadata=meta(
            "HTTP redirect port",
            "A plain-HTTP port that sends visitors to HTTPS; 0 turns it off.",
            min=0,
            max=65535,
        ),
    )


@dataclass
class RoomsSection:
    """Defaults for rooms created on this unit (Twilio's room parameters)."""

    type: str = field(
        default="group",
        metadata=meta(
            "Room type",
            "Twilio room type for rooms created on this unit.",
            choices=ROOM_TYPES,
            live=True,
        ),
    )
    max_participants: int = field(
        default=10,
        metadata=meta(
            "Participants per room", "Most people in one room at once.", min=1, max=50, live=True
        ),
    )
    empty_room_timeout: int = field(
        default=5,
        metadata=meta(
            "Close an empty room after (minutes)",
            "How long a room stays open once everyone has left.",
            min=1,
            max=1440,
            live=True,
        ),
    )
    unused_room_timeout: int = field(
        default=5,
        metadata=meta(
            "Close an unused room after (minutes)",
            "How long a room nobody has joined stays open.",
            min=1,
            max=1440,
            live=True,
        ),
    )
    max_participant_duration: int = field(
        default=14400,
        metadata=meta(
            "Longest stay (seconds)",
            "After this a participant is disconnected (600 to 86400: 10 minutes to a day).",
            min=600,
            max=86400,
            live=True,
        ),
    )
    status_callback: str = field(
        default="",
        metadata=meta(
            "Status callback URL",
            "Where room events are sent for rooms created by joining; empty: none.",
            pattern=URL,
            rule=URL_RULE,
            live=True,
        ),
    )
    status_callback_method: str = field(
        default="POST",
        metadata=meta(
            "Status callback method",
            "HTTP method of the status callbacks.",
            choices=("POST", "GET"),
            live=True,
        ),
    )
    record_participants_on_connect: bool = field(
        default=False,
        metadata=meta(
            "Record rooms created by joining",
            "Record every track of rooms created by joining (rooms made through the API say it"
            " themselves).",
            live=True,
        ),
    )


@dataclass
class RecordingsSection:
    """Where recordings may grow (the data directory's recordings/) and for how long."""

    quota_mb: int = field(
        default=8192,
        metadata=meta(
            "Recordings quota (MB)",
            "Recordings and compositions together: new ones are refused, running ones stop,"
            " at this size.",
            min=16,
            max=16_777_216,
        ),
    )
    min_free_mb: int = field(
        default=512,
        metadata=meta(
            "Keep free on the disk (MB)",
            "Recording and composing stop before the data disk has less free space than this.",
            min=64,
            max=1_048_576,
        ),
    )
    retention_days: int = field(
        default=30,
        metadata=meta(
            "Keep recordings for (days)",
            "Recordings and compositions older than this are deleted; 0 keeps them.",
            min=0,
            max=3650,
        ),
    )


@dataclass
class MediaSection:
    """ICE servers and the UDP ports of the media path."""

    stun_servers: list[str] = field(
        default_factory=list,
        metadata=meta(
            "STUN servers",
            "One stun: URL per line; none: the unit is reached on the LAN only.",
            item_pattern=ICE_URL,
            rule=ICE_URL_RULE,
        ),
    )
    turn_servers: list[str] = field(
        default_factory=list,
        metadata=meta(
            "TURN servers",
            "One turn: URL per line, for networks that block direct media.",
            item_pattern=ICE_URL,
            rule=ICE_URL_RULE,
        ),
    )
    turn_username: str = field(
        default="", metadata=meta("TURN username", "Username for the TURN servers.", max_len=256)
    )
    turn_credential: str = field(
        default="",
        metadata=meta(
            "TURN password", "Password (credential) for the TURN servers.", max_len=256, secret=True
        ),
    )
    udp_port_min: int = field(
        default=0,
        metadata=meta(
            "Lowest UDP port",
            "First UDP port media may use; 0 with the highest also 0: any port.",
            min=0,
            max=65535,
        ),
    )
    udp_port_max: int = field(
        default=0,
        metadata=meta(
            "Highest UDP port",
            "Last UDP port media may use; 0 with the lowest also 0: any port.",
            min=0,
            max=65535,
        ),
    )


@dataclass
class WhipSection:
    """WHIP publishers' and WHEP players' sessions on this unit."""

    connect_timeout: float = field(
        default=30.0,
        metadata=meta(
            "Session connect timeout (seconds)",
            "A WHIP or WHEP session whose media has not connected this long after its POST ends.",
            min=1.0,
            max=600.0,
        ),
    )
    max_sessions: int = field(
        default=0,
        metadata=meta(
            "Most sessions at once",
            "WHIP and WHEP sessions together; more are refused (503) until one ends. 0: no cap.",
            min=0,
            max=1000,
        ),
    )


@dataclass
class KioskSection:
    """What the kiosk joins when its button is pressed."""

    room: str = field(
        default="meeting-room",
        metadata=meta(
            "Room",
            "The room the kiosk joins when its button is pressed.",
            pattern=r"^.{1,128}$",
            rule="1 to 128 characters",
        ),
    )
    identity: str = field(
        default="kiosk",
        metadata=meta(
            "Identity in the room",
            "The name the kiosk has in the room.",
            pattern=r"^.{1,121}$",
            rule="1 to 121 characters",
        ),
    )
    remote_url: str = field(
        default="",
        metadata=meta(
            "Other unit's address",
            "Join a room on another unit at this URL; empty: on this unit.",
            pattern=URL,
            rule=URL_RULE,
        ),
    )
    remote_api_key_sid: str = field(
        default="",
        metadata=meta(
            "Other unit's API key SID",
            "An API key SID of the other unit (SK and 32 hex digits).",
            pattern=r"^(SK[0-9a-f]{32})?$",
            rule="SK followed by 32 digits or letters a-f, or empty",
        ),
    )
    remote_api_key_secret: str = field(
        default="",
        metadata=meta(
            "Other unit's API key secret", "The secret of that API key.", max_len=128, secret=True
        ),
    )
    remote_token: str = field(
        default="",
        metadata=meta(
            "Other unit's access token",
            "Or a ready access token for the other unit instead of a key.",
            max_len=8192,
            secret=True,
        ),
    )
    leave_on: str = field(
        default="press",
        metadata=meta(
            "Leave the room on",
            "press: a second press leaves; long_press: only a long press leaves.",
            choices=LEAVE_ON,
        ),
    )


FIELD_TRANSPORTS = ("unit", "whip")
ROOM_NAME_PATTERN = r"^[^\s/?#]{1,128}$"
ROOM_NAME_RULE = "1 to 128 characters, no spaces, /, ? or #"


@dataclass
class FieldSection:
    """How a field unit reaches its hub (``unit.role = "field"``)."""

    transport: str = field(
        default="unit",
        metadata=meta(
            "Reach the hub by",
            "unit: to another unit at kiosk.remote_url; whip: to any WHIP server at whip_url.",
            choices=FIELD_TRANSPORTS,
        ),
    )
    whip_url: str = field(
        default="",
        metadata=meta(
            "WHIP endpoint",
            "The WHIP server's endpoint URL (transport whip).",
            pattern=URL,
            rule=URL_RULE,
        ),
    )
    whip_token: str = field(
        default="",
        metadata=meta(
            "WHIP bearer token",
            "Sent as Authorization: Bearer; empty: none.",
            max_len=8192,
            pattern=r"^[\x21-\x7e]*$",
            rule="printable ASCII without spaces, at most 8192 characters",
            secret=True,
        ),
    )
    retry_initial: float = field(
        default=1.0,
        metadata=meta(
            "First retry after (seconds)",
            "Wait before the first retry once the link is lost; doubled each failure.",
            min=0.1,
            max=60.0,
        ),
    )
    retry_max: float = field(
        default=5.0,
        metadata=meta(
            "Longest wait between retries (seconds)",
            "The backoff's cap: how late the unit may notice that the hub is back.",
            min=0.5,
            max=600.0,
        ),
    )
    retry_jitter: float = field(
        default=0.3,
        metadata=meta(
            "Retry jitter (share)",
            "Random share taken off each wait, so units that lost one hub do not return together.",
            min=0.0,
            max=1.0,
        ),
    )
    record_while_down: bool = field(
        default=True,
        metadata=meta(
            "Record while the link is down",
            "Record camera and microphone on this unit while it cannot publish (quota applies).",
        ),
    )
    local_room: str = field(
        default="local-recording",
        metadata=meta(
            "Local recording room",
            "The room on this unit the recordings made while the link is down belong to.",
            pattern=ROOM_NAME_PATTERN,
            rule=ROOM_NAME_RULE,
        ),
    )


@dataclass
class HubSection:
    """The hub's room of field units (``unit.role = "hub"``)."""

    room: str = field(
        default="field",
        metadata=meta(
            "Field room",
            "The room field units stream into; the multi-view page shows its participants.",
            pattern=ROOM_NAME_PATTERN,
            rule=ROOM_NAME_RULE,
        ),
    )
    record: bool = field(
        default=False,
        metadata=meta(
            "Record all field streams",
            "Record every field unit's camera and microphone, one file per track.",
        ),
    )
    offline_after: int = field(
        default=60,
        metadata=meta(
            "Offline after (seconds)",
            "A field unit whose link dropped is reconnecting until then, offline after.",
            min=5,
            max=86400,
        ),
    )
    discover: bool = field(
        default=True,
        metadata=meta(
            "Discover field units",
            "List field units that announce themselves on the LAN (mDNS) before they join.",
        ),
    )


@dataclass
class LayerSection:
    """One encoded size of the camera picture."""

    name: str = field(
        default="high",
        metadata=meta(
            "Name",
            "Short name of the layer.",
            pattern=r"^[a-z0-9_-]{1,16}$",
            rule="lowercase letters a-z, digits, _ and -, 1 to 16 characters",
        ),
    )
    width: int = field(
        default=1280,
        metadata=meta("Width (pixels)", "Width of the encoded picture.", min=16, max=1920),
    )
    height: int = field(
        default=720,
        metadata=meta("Height (pixels)", "Height of the encoded picture.", min=16, max=1080),
    )
    bitrate: int = field(
        default=2_500_000,
        metadata=meta(
            "Bitrate (bits/s)", "Target bitrate of the layer.", min=50_000, max=10_000_000
        ),
    )


def _default_layers() -> list[LayerSection]:
    return [
        LayerSection("high", 1280, 720, 2_500_000),
        LayerSection("low", 320, 180, 250_000),
    ]


@dataclass
class CameraSection:
    """Camera backend and its encoded layers."""

    backend: str = field(
        default="auto",
        metadata=meta(
            "Camera",
            "Which camera driver to use; auto picks the first that works.",
            choices=CAMERA_BACKENDS,
        ),
    )
    encoder: str = field(
        default="auto",
        metadata=meta(
            "Video encoder", "H.264 encoder; auto prefers the hardware encoder.", choices=ENCODERS
        ),
    )
    device: str = field(
        default="/dev/video0",
        metadata=meta("V4L2 device", "Video device file used by the v4l2 camera.", max_len=256),
    )
    framerate: int = field(
        default=30,
        metadata=meta(
            "Frame rate (per second)", "Frames the camera captures each second.", min=1, max=60
        ),
    )
    keyframe_interval: int = field(
        default=60,
        metadata=meta(
            "Keyframe interval (frames)",
            "Frames between two full pictures; fewer recover faster, more save bandwidth.",
            min=1,
            max=600,
        ),
    )
    profile: str = field(
        default="baseline",
        metadata=meta(
            "H.264 profile",
            "baseline plays everywhere; main and high compress better.",
            choices=PROFILES,
        ),
    )
    layers: list[LayerSection] = field(
        default_factory=_default_layers,
        metadata=meta(
            "Layers",
            "Encoded sizes of the picture, largest first, at most three.",
            min_items=1,
            max_items=3,
        ),
    )


@dataclass
class AudioSection:
    """ALSA devices."""

    enabled: bool = field(
        default=True,
        metadata=meta("Microphone and speaker", "Use the sound card; off: the unit has no audio."),
    )
    capture_device: str = field(
        default="default",
        metadata=meta(
            "Microphone device",
            "ALSA capture device (PCM name), such as default or hw:1.",
            max_len=512,
        ),
    )
    playback_device: str = field(
        default="default",
        metadata=meta(
            "Speaker device",
            "ALSA playback device (PCM name), such as default or hw:1.",
            max_len=512,
        ),
    )
    period_ms: int = field(
        default=20,
        metadata=meta(
            "Audio period (ms)",
            "Length of one audio buffer; 10 lowers delay, 20 is steadier.",
            choices=(10, 20),
        ),
    )
    mixer: str = field(
        default="",
        metadata=meta(
            "Volume control", "ALSA mixer control the volume is set on; empty: none.", max_len=64
        ),
    )
    volume: int = field(
        default=80,
        metadata=meta("Speaker volume (%)", "Loudness of the speaker.", min=0, max=100, live=True),
    )


@dataclass
class GpioSection:
    """Buttons and LEDs (BCM pin numbers)."""

    pin_factory: str = field(
        default="auto",
        metadata=meta(
            "GPIO driver",
            "auto: the board's pins; mock: simulated buttons on the status page.",
            choices=PIN_FACTORIES,
        ),
    )
    join_button: int = field(
        default=17,
        metadata=meta("Join button pin", "GPIO (BCM) pin of the join/leave button.", min=0, max=27),
    )
    mute_button: int = field(
        default=27,
        metadata=meta("Mute button pin", "GPIO (BCM) pin of the mute button.", min=0, max=27),
    )
    status_led: int = field(
        default=22,
        metadata=meta("Status LED pin", "GPIO (BCM) pin of the status LED.", min=0, max=27),
    )
    mute_led: int = field(
        default=23, metadata=meta("Mute LED pin", "GPIO (BCM) pin of the mute LED.", min=0, max=27)
    )
    active_low: bool = field(
        default=True,
        metadata=meta(
            "Buttons pull to ground", "On when pressing a button connects its pin to ground."
        ),
    )
    long_press_seconds: float = field(
        default=2.0,
        metadata=meta(
            "Long press (seconds)",
            "How long a press must last to count as long.",
            min=0.5,
            max=10.0,
        ),
    )


@dataclass
class ProvisioningSection:
    """The admin page and discovery."""

    mdns: bool = field(
        default=True,
        metadata=meta(
            "Announce on the LAN",
            "Make the unit findable by its name followed by .local (mDNS).",
            live=True,
        ),
    )


@dataclass
class MetricsSection:
    """Prometheus metrics at ``/metrics``."""

    token: str = field(
        default="",
        metadata=meta(
            "Metrics token",
            "Bearer token for scrapes from other hosts (empty: this machine only).",
            max_len=256,
            pattern=r"^[\x21-\x7e]*$",
            rule="printable ASCII without spaces, at most 256 characters",
            secret=True,
            live=True,
        ),
    )
    label_names: bool = field(
        default=False,
        metadata=meta(
            "Label by room name",
            "Label series by room name too (by default only by room SID).",
            live=True,
        ),
    )


@dataclass
class Settings:
    """The whole configuration file."""

    unit: UnitSection = field(default_factory=UnitSection)
    http: HttpSection = field(default_factory=HttpSection)
    rooms: RoomsSection = field(default_factory=RoomsSection)
    media: MediaSection = field(default_factory=MediaSection)
    whip: WhipSection = field(default_factory=WhipSection)
    recordings: RecordingsSection = field(default_factory=RecordingsSection)
    kiosk: KioskSection = field(default_factory=KioskSection)
    # ``field`` names a table here: below it the dataclasses function is spelled out.
    field: FieldSection = field(default_factory=FieldSection)
    hub: HubSection = dataclasses.field(default_factory=HubSection)
    camera: CameraSection = dataclasses.field(default_factory=CameraSection)
    audio: AudioSection = dataclasses.field(default_factory=AudioSection)
    gpio: GpioSection = dataclasses.field(default_factory=GpioSection)
    provisioning: ProvisioningSection = dataclasses.field(default_factory=ProvisioningSection)
    metrics: MetricsSection = dataclasses.field(default_factory=MetricsSection)
