"""The config mapped onto each subsystem's own types: the one place that knows both sides.

``Settings`` is the appliance's TOML schema; ``edge_sfu``, ``hardware`` and ``provisioning``
never see it. Each function here turns one table into what one subsystem takes, so a config
key is translated in exactly one place.
"""

from __future__ import annotations

from edge_sfu.context import SfuSettings
from edge_sfu.media import MediaSettings
from edge_sfu.media.settings import IceServer
from edge_sfu.recording.disk import RecordingSettings
from edge_sfu.rooms import RoomDefaults
from edge_sfu.signaling.whip import WhipSettings
from hardware.audio.devices import AudioSpec
from hardware.camera.base import CameraLayerSpec, CameraSpec
from provisioning.mdns import loopback_only

from .kiosk.state import KioskPolicy, LeaveOn
from .settings import KioskSection, Settings

#: Addresses that mean "every interface" in ``http.listen``.
WILDCARD_HOSTS = ("", "0.0.0.0", "::")  # noqa: S104 (compared with, never bound)


def camera_spec(settings: Settings) -> CameraSpec | None:
    """The ``[camera]`` table as a ``CameraSpec``; None when the camera is turned off."""
    c = settings.camera
    if c.backend == "none":
        return None
    return CameraSpec(
        layers=tuple(CameraLayerSpec(x.name, x.width, x.height, x.bitrate) for x in c.layers),
        framerate=float(c.framerate),
        keyframe_interval=c.keyframe_interval,
        profile=c.profile,
        backend=c.backend,
        encoder=c.encoder,
        device=c.device,
    )


def audio_spec(settings: Settings) -> AudioSpec | None:
    """The ``[audio]`` table as an ``AudioSpec``; None when audio is turned off."""
    a = settings.audio
    if not a.enabled:
        return None
    return AudioSpec(
        capture_device=a.capture_device,
        playback_device=a.playback_device,
        period_ms=a.period_ms,
        mixer_control=a.mixer,
    )


def room_defaults(settings: Settings) -> RoomDefaults:
    """The config's ``[rooms]`` table as the SFU's defaults for ad-hoc rooms."""
    r = settings.rooms
    return RoomDefaults(
        type=r.type,
        max_participants=r.max_participants,
        empty_room_timeout=r.empty_room_timeout,
        unused_room_timeout=r.unused_room_timeout,
        max_participant_duration=r.max_participant_duration,
        status_callback=r.status_callback or None,
        status_callback_method=r.status_callback_method,
        record_participants_on_connect=r.record_participants_on_connect,
    )


def recording_settings(settings: Settings) -> RecordingSettings:
    """The ``[recordings]`` table as the recorder's disk limits."""
    r = settings.recordings
    return RecordingSettings(
        quota_bytes=r.quota_mb * 1024**2,
        min_free_bytes=r.min_free_mb * 1024**2,
        retention_days=r.retention_days,
    )


def sfu_settings(settings: Settings) -> SfuSettings:
    """What the SFU's context takes from the config (the public URL of links it makes)."""
    return SfuSettings(public_base_url=settings.http.public_url or None)


def media_settings(settings: Settings) -> MediaSettings:
    """The config's ``[media]`` table as the forwarding engine's settings."""
    m = settings.media
    servers = [IceServer(urls=(url,)) for url in m.stun_servers]
    servers += [
        IceServer(
            urls=(url,), username=m.turn_username or None, credential=m.turn_credential or None
        )
        for url in m.turn_servers
    ]
    ports = (m.udp_port_min, m.udp_port_max) if m.udp_port_min else None
    # Confined to loopback (the test suite): media candidates on 127.0.0.1 only, too.
    addresses = ("127.0.0.1",) if loopback_only() else None
    return MediaSettings(ice_servers=tuple(servers), udp_port_range=ports, host_addresses=addresses)


def whip_settings(settings: Settings) -> WhipSettings:
    """The ``[whip]`` table as the WHIP/WHEP sessions' timer and cap."""
    w = settings.whip
    return WhipSettings(connect_timeout=w.connect_timeout, max_sessions=w.max_sessions)


def public_base_url(settings: Settings, port: int | None = None, tls: bool | None = None) -> str:
    """The URL people use to reach this unit: ``http.public_url``, else derived from where
    HTTP listens (a wildcard address becomes ``<unit name>.local``)."""
    if settings.http.public_url:
        return settings.http.public_url.rstrip("/")
    host, listen_port = listen_address(settings.http.listen)
    if host in WILDCARD_HOSTS:
        host = f"{settings.unit.name}.local"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if (settings.http.tls if tls is None else tls) else "http"
    return f"{scheme}://{host}:{port or listen_port}"


def listen_address(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` too)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def kiosk_policy(settings: Settings) -> KioskPolicy:
    """The ``[kiosk]`` table as the call state machine's policy.

    A field unit leaves only on a long press (it streams from start-up), rejoins whatever
    ended its call, and backs off as ``[field]`` says, with jitter; every role retries
    forever.
    """
    if settings.unit.role == "field":
        f = settings.field
        return KioskPolicy(
            room=settings.kiosk.room,
            leave_on=LeaveOn.LONG_PRESS,
            retry_initial=f.retry_initial,
            retry_max=f.retry_max,
            retry_jitter=f.retry_jitter,
            persistent=True,
            max_retries=None,
        )
    return KioskPolicy(
        room=settings.kiosk.room, leave_on=LeaveOn(settings.kiosk.leave_on), max_retries=None
    )


def call_identity(settings: Settings) -> str:
    """Who the unit is in the rooms it joins: ``kiosk.identity``; a field unit that leaves it
    at the default is its unit name, so the field units of one hub never share a name (one
    would remove the other, 53205) and the hub shows each by the name it announces."""
    identity = settings.kiosk.identity
    default = KioskSection().identity
    if settings.unit.role == "field" and identity == default:
        return settings.unit.name
    return identity
