"""scripts/install-pi.sh on bookworm and trixie: the package plan and the NumPy constraint for
each release's versions, and a dry run that changes nothing.

The release differences are run through the script's own functions against stand-in
``dpkg-query`` and ``apt-cache`` commands that answer as each release's archive does;
``make test-arm64`` runs the whole script in real arm64 chroots of both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "install-pi.sh"

# Installed (dpkg-query) and offered (apt-cache policy) versions, as on a fresh system of each
# release: Raspberry Pi OS offers python3-picamera2, which brings Debian's NumPy.
BOOKWORM = {"python3-alsaaudio": "0.8.4-1.1+b7", "python3-numpy": "1:1.24.2-1+deb12u1"}
TRIXIE = {"python3-alsaaudio": "0.10.0-0.1+b5", "python3-numpy": "1:2.2.4+ds-1"}
PI_OS = {"python3-picamera2": "0.3.31-1", "python3-lgpio": "0.2.2-1~rpt1"}


def functions(*names: str) -> str:
    text = SCRIPT.read_text()
    packages = re.search(r"^PACKAGES=\(.*?\)$", text, re.MULTILINE | re.DOTALL)
    assert packages
    found = [packages.group(0)]
    for name in names:
        match = re.search(rf"^{name}\(\) \{{.*?^\}}$", text, re.MULTILINE | re.DOTALL)
        match = match or re.search(rf"^{name}\(\) \{{.*\}}$", text, re.MULTILINE)
        assert match, name
        found.append(match.group(0))
    return "\n".join(found)


def run_functions(
    tmp_path: Path, code: str, offered: dict[str, str], installed: dict[str, str] | None = None
) -> str:
    """Runs ``code`` after the script's helpers, with stand-ins for dpkg-query and apt-cache
    that answer for several packages at once, as the real ones do."""
    installed = installed or {}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    dpkg_cases = "".join(
        f"    {p}) echo '{p} install ok installed {v}' ;;\n" for p, v in installed.items()
    )
    apt_cases = "".join(f"    {p}) echo '  Candidate: {v}' ;;\n" for p, v in offered.items())
    # dpkg-query -W -f=FORMAT PKG...; apt-cache policy PKG...
    (bin_dir / "dpkg-query").write_text(
        f'#!/bin/sh\nshift 2\nfor pkg; do\n  case "$pkg" in\n{dpkg_cases}  esac\ndone\n'
    )
    (bin_dir / "apt-cache").write_text(
        "#!/bin/sh\nshift\nfor pkg; do\n  echo \"$pkg:\"\n  echo '  Installed: (none)'\n"
        f"  case \"$pkg\" in\n{apt_cases}    *) echo '  Candidate: (none)' ;;\n  esac\ndone\n"
    )
    for tool in ("dpkg-query", "apt-cache"):
        (bin_dir / tool).chmod(0o755)
    helpers = functions(
        "read_versions",
        "apt_has",
        "deb_version",
        "deb_at_least",
        "plan_packages",
        "numpy_constraint",
    )
    result = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{helpers}\n{code}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
    )
    return result.stdout


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg (Debian)")
PLAN = 'plan_packages; echo "want: ${apt_want[*]}"; echo "skipped: ${apt_skipped[*]}"; '
PLAN += 'echo "build: $alsa_build"; echo "numpy: $(numpy_constraint)"'


@needs_dpkg
@pytest.mark.parametrize(
    ("release", "constraint"),
    [(BOOKWORM, "numpy<2"), (TRIXIE, "numpy<3")],
    ids=["bookworm", "trixie"],
)
def test_raspberry_pi_os_plan(tmp_path: Path, release: dict[str, str], constraint: str) -> None:
    out = run_functions(tmp_path, PLAN, {**release, **PI_OS})
    assert "want: python3 python3-venv python3-systemd python3-alsaaudio python3-gpiozero" in out
    # a compiler and Python's headers always: pip builds the SFU's compiled send helper
    assert "ffmpeg gcc python3-dev python3-picamera2 python3-lgpio libasound2-dev" in out
    assert "skipped: \n" in out
    # Both releases' python3-alsaaudio are older than 0.11: built into the venv.
    assert "build: yes" in out
    # NumPy comes with python3-picamera2: the venv keeps to its major version. NumPy 1.x has
    # no wheels for trixie's Python 3.13, so "numpy<2" there would mean building it.
    assert f"numpy: {constraint}\n" in out


@needs_dpkg
def test_plain_debian_skips_the_pi_packages_and_constrains_nothing(tmp_path: Path) -> None:
    out = run_functions(tmp_path, PLAN, TRIXIE)
    assert "skipped: python3-picamera2 python3-lgpio" in out
    assert "picamera2" not in out.split("skipped:")[0]
    assert "numpy: \n" in out


@needs_dpkg
def test_installed_numpy_decides_the_constraint(tmp_path: Path) -> None:
    out = run_functions(tmp_path, PLAN, TRIXIE, {"python3-numpy": "1:1.26.4+ds-11"})
    assert "numpy: numpy<2\n" in out


@needs_dpkg
def test_a_new_enough_alsaaudio_is_not_built(tmp_path: Path) -> None:
    out = run_functions(tmp_path, PLAN, {**TRIXIE, "python3-alsaaudio": "0.11.0-1"})
    assert "build: no" in out
    assert "libasound2-dev" not in out
    assert "gcc python3-dev" in out  # still: the send helper


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="needs apt (Debian)")
def test_dry_run_prints_the_plan_without_root_and_changes_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--no-start"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("==> dry run: nothing is changed\n")
    for label in ("system:", "apt:", "python:", "venv:", "pip:", "unit:", "sysusers:"):
        assert re.search(rf"^{label} ", out, re.MULTILINE), label
    assert "python3 -m venv --system-site-packages /opt/edge-appliance/venv" in out
    assert "/etc/systemd/system/edge-appliance.service" in out
    # --no-start: enable only; where systemd is not running (a container, a chroot) it says so.
    assert re.search(
        r"^service:  systemctl enable edge-appliance( \(systemd is not running here\))?$",
        out,
        re.MULTILINE,
    )
