#!/usr/bin/env bash
# Installs edge-appliance as a systemd service on a Raspberry Pi (64-bit Raspberry Pi OS,
# bookworm or later) from this source tree. Safe to run again: it upgrades in place.
#
#   sudo ./scripts/install-pi.sh [--no-start]
#
# docs/install-pi.md explains each step; in short:
#   1. apt packages (the hardware bindings come from the OS, not PyPI)
#   2. a virtual environment in /opt/edge-appliance/venv that can see those packages
#   3. the project itself into that venv (without the hw/camera extras)
#   4. the unit, sysusers.d and tmpfiles.d files; the service user and directories
#   5. /etc/edge-appliance/config.toml from systemd/config.example.toml, only if absent
#   6. systemctl daemon-reload, enable and (re)start
set -euo pipefail

PREFIX=/opt/edge-appliance
VENV=$PREFIX/venv
CONFIG_DIR=/etc/edge-appliance
CONFIG=$CONFIG_DIR/config.toml
DATA_DIR=/var/lib/edge-appliance
SERVICE=edge-appliance
UNIT_DIR=/etc/systemd/system
SYSUSERS_DIR=/etc/sysusers.d
TMPFILES_DIR=/etc/tmpfiles.d
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

start=yes

usage() {
    # The header comment above, without its leading "# ".
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

log() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'install-pi: %s\n' "$*" >&2
    exit 1
}

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --no-start) start=no ;;
            -h | --help)
                usage
                exit 0
                ;;
            *) die "unknown option: $1 (try --help)" ;;
        esac
        shift
    done
}

check_system() {
    [ "$(id -u)" -eq 0 ] || die "run as root: sudo $0"
    command -v apt-get >/dev/null || die "not a Debian-based system (no apt-get)"
    command -v systemctl >/dev/null || die "systemd is required"
    local arch
    arch=$(dpkg --print-architecture)
    case "$arch" in
        arm64 | amd64) ;;
        # PyAV publishes no 32-bit ARM wheels: building FFmpeg bindings on a Pi is not a
        # supported install. Use the 64-bit Raspberry Pi OS.
        armhf | armel) die "32-bit OS ($arch) is not supported: install 64-bit Raspberry Pi OS" ;;
        *) warn "untested architecture $arch" ;;
    esac
    [ -f "$SRC/pyproject.toml" ] || die "run from the edge-appliance source tree ($SRC)"
}

# True when the configured apt sources offer package $1.
apt_has() {
    # "Candidate: (none)" means known but not installable from any configured source.
    apt-cache policy "$1" 2>/dev/null | grep -q '^ *Candidate: [^(]'
}

install_apt_packages() {
    log "installing apt packages"
    apt-get update -qq
    # In Debian and Raspberry Pi OS alike:
    #   python3-venv       the venv module (Debian splits it out of python3)
    #   python3-systemd    systemd-python: sd_notify and the journal (PyPI ships source only)
    #   python3-alsaaudio  pyalsaaudio (PyPI ships source only); checked for version below
    #   python3-gpiozero   buttons and LEDs
    #   ffmpeg             composes recordings (with the Pi's V4L2 H.264 encoder)
    local want=(python3 python3-venv python3-systemd python3-alsaaudio python3-gpiozero ffmpeg)
    # Only in the Raspberry Pi OS archive (archive.raspberrypi.com), so optional here:
    #   python3-picamera2  picamera2 with libcamera's Python bindings (never from PyPI on a Pi)
    #   python3-lgpio      the pin backend gpiozero 2 uses by default on a Pi
    local pkg
    for pkg in python3-picamera2 python3-lgpio; do
        if apt_has "$pkg"; then
            want+=("$pkg")
        else
            warn "$pkg is not in the apt sources (not Raspberry Pi OS?): skipping it"
        fi
    done
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want[@]}"
}

python_is_recent() {
    python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
        die "Python 3.11 or newer is required (Raspberry Pi OS bookworm has 3.11)"
}

make_venv() {
    # --system-site-packages lets the venv import the apt-installed bindings above;
    # packages pip installs into the venv still take precedence over them.
    if [ -x "$VENV/bin/python" ] &&
        grep -qi '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg"; then
        log "reusing $VENV"
        return
    fi
    log "creating $VENV"
    rm -rf "$VENV"
    mkdir -p "$PREFIX"
    python3 -m venv --system-site-packages "$VENV"
}

install_project() {
    log "installing edge-appliance into $VENV"
    local constraints
    constraints=$(mktemp)
    # python3-picamera2's compiled helpers (simplejpeg, ...) are built against Debian's
    # NumPy 1.x; a NumPy 2 in the venv would shadow it and break their import.
    echo 'numpy<2' >"$constraints"
    # No [hw] or [camera] extras: those bindings come from apt (see above).
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        --constraint "$constraints" --upgrade "$SRC"
    rm -f "$constraints"
    ensure_pyalsaaudio
    "$VENV/bin/python" -c 'import systemd.daemon, systemd.journal' ||
        die "python3-systemd is not importable from $VENV"
}

# appliance's audio backend passes rate=, periodsize= and periods= to alsaaudio.PCM, which
# pyalsaaudio 0.11 has; Debian bookworm's python3-alsaaudio is 0.8.4. Build a new enough
# one into the venv when the apt one is older.
ensure_pyalsaaudio() {
    if "$VENV/bin/python" - <<'EOF'; then
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    parts = version("pyalsaaudio").split(".")[:2]
except PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if tuple(int(p) for p in parts) >= (0, 11) else 1)
EOF
        return
    fi
    log "apt's python3-alsaaudio is too old: building pyalsaaudio>=0.11 into the venv"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        gcc python3-dev libasound2-dev
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'pyalsaaudio>=0.11'
}

install_system_files() {
    log "installing the unit, sysusers.d and tmpfiles.d files"
    install -D -m 0644 "$SRC/systemd/edge-appliance.service" "$UNIT_DIR/$SERVICE.service"
    install -D -m 0644 "$SRC/systemd/sysusers.d/edge-appliance.conf" \
        "$SYSUSERS_DIR/edge-appliance.conf"
    install -D -m 0644 "$SRC/systemd/tmpfiles.d/edge-appliance.conf" \
        "$TMPFILES_DIR/edge-appliance.conf"
    install -D -m 0644 "$SRC/docs/install-pi.md" "$PREFIX/docs/install-pi.md"
    systemd-sysusers "$SYSUSERS_DIR/edge-appliance.conf"
    systemd-tmpfiles --create "$TMPFILES_DIR/edge-appliance.conf"
}

# The unit name defaults to the host name when that is a valid unit name.
unit_name() {
    local name
    name=$(hostname | tr '[:upper:]' '[:lower:]')
    if [[ "$name" =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]]; then
        printf '%s' "$name"
    else
        printf 'edge-unit'
    fi
}

install_config() {
    if [ -e "$CONFIG" ]; then
        log "keeping existing $CONFIG"
    else
        log "writing $CONFIG"
        local tmp
        tmp=$(mktemp "$CONFIG_DIR/.config.toml.XXXXXX")
        sed "s/^name = \"edge-unit\"/name = \"$(unit_name)\"/" \
            "$SRC/systemd/config.example.toml" >"$tmp"
        chown root:edge-appliance "$tmp"
        chmod 0640 "$tmp"
        mv "$tmp" "$CONFIG"
    fi
    "$VENV/bin/edge-appliance" check-config --config "$CONFIG" --data-dir "$DATA_DIR" ||
        die "$CONFIG is not valid; fix it and run this again"
}

start_service() {
    log "enabling $SERVICE"
    systemctl daemon-reload
    if [ "$start" = no ]; then
        systemctl enable "$SERVICE"
        return
    fi
    local was_active=no
    systemctl is-active --quiet "$SERVICE" && was_active=yes
    systemctl enable --now "$SERVICE"
    # An upgrade: enable --now leaves a running service on the old code.
    [ "$was_active" = yes ] && systemctl restart "$SERVICE"
    systemctl --no-pager --lines=0 status "$SERVICE" || true
}

main() {
    parse_args "$@"
    check_system
    install_apt_packages
    python_is_recent
    make_venv
    install_project
    install_system_files
    install_config
    start_service
    log "done. Logs: journalctl -u $SERVICE -f    Status: systemctl status $SERVICE"
    log "press the join button from a shell: sudo $VENV/bin/edge-appliance press join"
}

main "$@"
