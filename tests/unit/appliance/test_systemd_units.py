"""The systemd unit, sysusers.d and tmpfiles.d files, checked by systemd's own tools.

``systemd-analyze verify`` refuses a unit whose ExecStart binary does not exist, and the
installed binary (/opt/edge-appliance/venv/bin/edge-appliance) only exists on a unit that has
been installed. The tests therefore check a copy of the unit whose ExecStart points at
``/bin/true`` (same arguments); every other line is the shipped file's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SYSTEMD = REPO / "systemd"
UNIT = SYSTEMD / "edge-appliance.service"
SYSUSERS = SYSTEMD / "sysusers.d" / "edge-appliance.conf"
TMPFILES = SYSTEMD / "tmpfiles.d" / "edge-appliance.conf"
EXAMPLE_CONFIG = SYSTEMD / "config.example.toml"
BINARY = "/opt/edge-appliance/venv/bin/edge-appliance"
EXEC_START = (
    f"{BINARY} run --config /etc/edge-appliance/config.toml --data-dir /var/lib/edge-appliance"
)

needs = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file; keys may repeat, as systemd allows."""
    settings: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.fixture
def checkable_unit(tmp_path: Path) -> Path:
    """The shipped unit with ExecStart's binary replaced by one that exists here."""
    text = UNIT.read_text()
    assert f"ExecStart={BINARY} " in text
    copy = tmp_path / "edge-appliance.service"
    copy.write_text(text.replace(f"ExecStart={BINARY} ", "ExecStart=/bin/true "))
    return copy


def _analyze(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze`` with ``args``, its exit status and output captured."""
    return subprocess.run(
        ["systemd-analyze", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs
def test_unit_verifies_without_warnings(checkable_unit: Path) -> None:
    result = _analyze("verify", checkable_unit)
    # verify exits 0 even for unknown keys: the warnings on stderr are the real verdict.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@needs
def test_verify_does_catch_mistakes(tmp_path: Path, checkable_unit: Path) -> None:
    broken = tmp_path / "broken" / "edge-appliance.service"
    broken.parent.mkdir()
    broken.write_text(checkable_unit.read_text().replace("ProtectHome=", "ProtectHomme="))
    result = _analyze("verify", broken)
    assert "ProtectHomme" in result.stderr


@needs
def test_security_exposure_is_at_most_2(checkable_unit: Path) -> None:
    result = _analyze("security", "--offline=true", "--threshold=20", checkable_unit)
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for edge-appliance\.service: (\d+\.\d)", output)
    assert match, output
    exposure = float(match.group(1))
    assert exposure <= 2.0, output
    assert result.returncode == 0, output


def test_unit_has_the_service_contract() -> None:
    s = unit_settings(UNIT.read_text())
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "30",
        "Restart": "on-failure",
        "TimeoutStopSec": "20",
        "User": "edge-appliance",
        "StateDirectory": "edge-appliance",
        "ConfigurationDirectory": "edge-appliance",
        "RuntimeDirectory": "edge-appliance",
        "UMask": "0077",
        "ExecStart": EXEC_START,
        "DevicePolicy": "closed",
        "CapabilityBoundingSet": "",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "SystemCallArchitectures": "native",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    }
    for key, value in expected.items():
        assert s.get(key) == [value], key
    assert s["SupplementaryGroups"] == ["video audio gpio render"]
    assert "RestartSec" in s
    assert "@system-service" in s["SystemCallFilter"]


def test_devices_cover_camera_sound_gpio_and_videocore() -> None:
    allowed = {v.split()[0] for v in unit_settings(UNIT.read_text())["DeviceAllow"]}
    # Kernel device classes as /proc/devices names them (DeviceAllow= takes no globs).
    for name in ("char-video4linux", "char-media", "char-alsa", "char-gpiochip"):
        assert name in allowed
    for name in ("char-dma_heap", "char-drm", "char-vchiq", "/dev/vcio"):
        assert name in allowed


def test_options_left_out_are_left_out_and_explained() -> None:
    text = UNIT.read_text()
    s = unit_settings(text)
    for key in ("MemoryDenyWriteExecute", "PrivateUsers", "ProcSubset", "PrivateDevices"):
        assert key not in s, key
        assert f"#   {key}=yes" in text or f"#   {key}=pid" in text, key


def test_memory_deny_write_execute_would_break_webrtc() -> None:
    """Why the unit leaves MemoryDenyWriteExecute off, checked on this machine.

    Linux's PR_SET_MDWE refuses write+execute mappings the way the unit option does.
    aiortc's DTLS context sets a pyOpenSSL verify callback, and cffi builds such callbacks in
    write+execute memory, so every WebRTC connection would fail. If this test starts
    failing, a dependency changed and the option deserves another look.
    """
    probe = (
        "import ctypes, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.prctl(65, 1, 0, 0, 0) != 0:\n"  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
        "    sys.exit(77)\n"
        "from aiortc.rtcdtlstransport import RTCCertificate, SRTP_AES128_CM_SHA1_80\n"
        "cert = RTCCertificate.generateCertificate()\n"
        "try:\n"
        "    cert._create_ssl_context([SRTP_AES128_CM_SHA1_80])\n"
        "except MemoryError:\n"
        "    sys.exit(1)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode == 77:
        pytest.skip("kernel has no PR_SET_MDWE (Linux < 6.3)")
    assert result.returncode == 1, (
        "aiortc's DTLS context now works without write+execute memory: "
        f"consider MemoryDenyWriteExecute=yes\n{result.stderr}"
    )


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers")
def test_sysusers_creates_the_user_and_groups(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nvideo:x:44:\n")  # one group pre-exists
    for _ in range(2):  # idempotent: the second run changes nothing
        subprocess.run(
            ["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)],
            capture_output=True,
            timeout=60,
            check=True,
        )
    users = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc/passwd").open()}
    user = users["edge-appliance"]
    assert user[5] == "/var/lib/edge-appliance"
    assert user[6].strip().endswith("nologin")
    assert 0 < int(user[2]) < 1000  # a system user
    groups = {
        line.split(":")[0]: line.strip().split(":") for line in (tmp_path / "etc/group").open()
    }
    assert groups["video"][2] == "44"  # existing group kept its gid
    for name in ("video", "audio", "gpio", "render"):
        assert "edge-appliance" in groups[name][3].split(","), name
    assert len((tmp_path / "etc/passwd").read_text().splitlines()) == 2


@pytest.mark.skipif(shutil.which("systemd-tmpfiles") is None, reason="no systemd-tmpfiles")
@pytest.mark.skipif(os.geteuid() != 0, reason="setting file owners needs root")
def test_tmpfiles_makes_the_config_directory_writable_by_the_service(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "edge-appliance:x:990:990::/var/lib/edge-appliance:/usr/sbin/nologin\n"
    )
    (tmp_path / "etc/group").write_text("root:x:0:\nedge-appliance:x:990:\n")
    (tmp_path / "etc/edge-appliance").mkdir()
    (tmp_path / "etc/edge-appliance/config.toml").write_text("")
    subprocess.run(
        ["systemd-tmpfiles", f"--root={tmp_path}", "--create", str(TMPFILES)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    conf_dir = (tmp_path / "etc/edge-appliance").stat()
    assert (conf_dir.st_mode & 0o7777, conf_dir.st_uid, conf_dir.st_gid) == (0o770, 0, 990)
    config = (tmp_path / "etc/edge-appliance/config.toml").stat()
    assert (config.st_mode & 0o7777, config.st_gid) == (0o640, 990)
    state = (tmp_path / "var/lib/edge-appliance").stat()
    assert (state.st_mode & 0o7777, state.st_uid, state.st_gid) == (0o700, 990, 990)


def test_config_directory_mode_matches_tmpfiles() -> None:
    # systemd never adjusts a configuration directory's mode; a mismatch only warns on start.
    s = unit_settings(UNIT.read_text())
    assert s["ConfigurationDirectoryMode"] == ["0770"]
    assert s["StateDirectoryMode"] == ["0700"]
    assert "d      /etc/edge-appliance               0770 root" in TMPFILES.read_text()


def test_resource_limits_fit_a_pi_zero_2_w() -> None:
    s = unit_settings(UNIT.read_text())
    # systemd's default soft limit (1024) let idle connections exhaust the descriptors.
    assert s.get("LimitNOFILE") == ["8192"]

    def mebibytes(value: str) -> int:
        assert value.endswith("M"), value
        return int(value[:-1])

    high, cap = mebibytes(s["MemoryHigh"][0]), mebibytes(s["MemoryMax"][0])
    # Throttling starts before the kill, and the kill comes before a 512 MB board (about
    # 420 MB left by the OS and the GPU) runs out of memory.
    assert 200 <= high < cap <= 420
