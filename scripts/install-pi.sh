#!/usr/bin/env bash
# Installs edge-appliance as a systemd service on a Raspberry Pi (64-bit Raspberry Pi OS,
# trixie or bookworm; plain Debian 13 or 12 works too) from this source tree. Safe to run
# again: it upgrades in place.
#
#   sudo ./scripts/install-pi.sh [--no-start] [--no-compile] [--dry-run]
#
#   --no-start    install and enable the service, but do not start it (for building an image)
#   --no-compile  do not byte-compile the Python packages (faster where the CPU is emulated;
#                 the daemon then compiles them in memory at each start)
#   --dry-run     print the packages, the venv, the pip install and the files it would
#                 install, and change nothing (needs no root)
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
dry_run=no
compile=yes

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
            --no-compile) compile=no ;;
            --dry-run) dry_run=yes ;;
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
    [ "$dry_run" = yes ] || [ "$(id -u)" -eq 0 ] || die "run as root: sudo $0"
    command -v apt-get >/dev/null || die "not a Debian-based system (no apt-get)"
    [ "$dry_run" = yes ] || command -v systemctl >/dev/null || die "systemd is required"
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

# The Debian packages this script asks about.
PACKAGES=(python3 python3-venv python3-systemd python3-alsaaudio python3-gpiozero ffmpeg
    python3-picamera2 python3-lgpio python3-numpy gcc python3-dev libasound2-dev)

# Reads the installed and the candidate (what apt would install) versions of packages $@ into
# deb_installed and deb_candidate, in one dpkg-query and one apt-cache call: each loads the
# whole package database, seconds apiece on a Pi Zero or under emulation.
read_versions() {
    declare -gA deb_installed deb_candidate
    local pkg v
    for pkg in "$@"; do
        deb_installed[$pkg]=""
        deb_candidate[$pkg]=""
    done
    while read -r pkg v; do
        deb_installed[$pkg]=$v
    done < <(dpkg-query -W -f='${Package} ${Status} ${Version}\n' "$@" 2>/dev/null |
        awk '$3 == "ok" && $4 == "installed" { print $1, $5 }')
    # "Candidate: (none)": known, but not installable from any configured source.
    while read -r pkg v; do
        deb_candidate[$pkg]=$v
    done < <(apt-cache policy "$@" 2>/dev/null |
        awk '/^[^ ]/ { sub(/:.*/, ""); pkg = $0 } $1 == "Candidate:" && $2 !~ /^\(/ { print pkg, $2 }')
}

# True when the configured apt sources offer package $1 (after read_versions).
apt_has() { [ -n "${deb_candidate[$1]:-}" ]; }

# The installed version of package $1, else the one apt would install, else "".
deb_version() {
    local v=${deb_installed[$1]:-}
    printf '%s' "${v:-${deb_candidate[$1]:-}}"
}

# True when Debian version $1 is at least $2.
deb_at_least() { dpkg --compare-versions "$1" ge "$2"; }

# Fills apt_want (to install) and apt_skipped (not offered here) for this system.
plan_packages() {
    # In Debian and Raspberry Pi OS alike, bookworm and trixie:
    #   python3-venv       the venv module (Debian splits it out of python3)
    #   python3-systemd    systemd-python: sd_notify and the journal (PyPI ships source only)
    #   python3-alsaaudio  pyalsaaudio (PyPI ships source only); checked for version below
    #   python3-gpiozero   buttons and LEDs
    #   ffmpeg             composes recordings (with the Pi's V4L2 H.264 encoder)
    #   gcc python3-dev    pip builds the SFU's compiled send helper (edge_sfu/media/seam/
    #                      _fastpath.c); without them it installs and forwards in pure Python
    read_versions "${PACKAGES[@]}"
    apt_want=(python3 python3-venv python3-systemd python3-alsaaudio python3-gpiozero ffmpeg
        gcc python3-dev)
    apt_skipped=()
    # Only in the Raspberry Pi OS archive (archive.raspberrypi.com), so optional here:
    #   python3-picamera2  picamera2 with libcamera's Python bindings (never from PyPI on a Pi)
    #   python3-lgpio      the pin backend gpiozero 2 uses by default on a Pi
    # These names are the same in bookworm and trixie (checked in Debian's archive); what differs
    # is the versions behind them: Python, python3-alsaaudio and NumPy, handled below.
    local pkg
    for pkg in python3-picamera2 python3-lgpio; do
        if apt_has "$pkg"; then
            apt_want+=("$pkg")
        else
            apt_skipped+=("$pkg")
        fi
    done
    # The audio backend passes rate=, periodsize= and periods= to alsaaudio.PCM, which
    # pyalsaaudio 0.11 has; bookworm's python3-alsaaudio is 0.8.4 and trixie's 0.10.0. When
    # the apt one is older it is built into the venv, which needs a compiler and the headers.
    alsa_build=no
    local alsa
    alsa=$(deb_version python3-alsaaudio)
    if [ -z "$alsa" ] || ! deb_at_least "$alsa" 0.11; then
        alsa_build=yes
        apt_want+=(libasound2-dev)
    fi
}

# The pip constraint for NumPy. python3-picamera2's compiled helpers (simplejpeg, ...) are built
# against Debian's NumPy: a venv NumPy of another major version would shadow it and break
# their import. Bookworm has NumPy 1.24 (so "numpy<2"), trixie NumPy 2.2 (so "numpy<3": NumPy
# 1.x has no wheels for trixie's Python 3.13). Without Debian's NumPy (installed, or coming
# with python3-picamera2) there is no constraint.
numpy_constraint() {
    local v=${deb_installed[python3-numpy]:-}
    if [ -z "$v" ] && apt_has python3-picamera2; then
        v=${deb_candidate[python3-numpy]:-}
    fi
    [ -n "$v" ] || return 0
    v=${v#*:}
    printf 'numpy<%d\n' $((${v%%.*} + 1))
}

install_apt_packages() {
    log "installing apt packages"
    apt-get update -qq
    plan_packages
    local pkg
    for pkg in "${apt_skipped[@]}"; do
        warn "$pkg is not in the apt sources (not Raspberry Pi OS?): skipping it"
    done
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_want[@]}"
    # python3-picamera2 may have brought Debian's NumPy (see numpy_constraint).
    read_versions python3-numpy
}

python_is_recent() {
    python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
        die "Python 3.11 or newer is required (Raspberry Pi OS bookworm has 3.11, trixie 3.13)"
}

make_venv() {
    # --system-site-packages lets the venv import the apt-installed bindings above;
    # packages pip installs into the venv still take precedence over them.
    if [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/pip" ] &&
        grep -qi '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" &&
        "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        log "reusing $VENV"
        return
    fi
    # Also when the OS's Python changed under it (bookworm's 3.11 to trixie's 3.13), or an
    # earlier run was stopped before the venv had its pip.
    log "creating $VENV"
    rm -rf "$VENV"
    mkdir -p "$PREFIX"
    python3 -m venv --system-site-packages "$VENV"
}

pip_install() {
    local flags=(--quiet --disable-pip-version-check)
    [ "$compile" = yes ] || flags+=(--no-compile)
    "$VENV/bin/pip" install "${flags[@]}" "$@"
}

install_project() {
    log "installing edge-appliance into $VENV"
    local constraints
    constraints=$(mktemp)
    numpy_constraint >"$constraints"
    # No [hw] or [camera] extras: those bindings come from apt (see above).
    pip_install --constraint "$constraints" --upgrade "$SRC"
    rm -f "$constraints"
    if [ "$alsa_build" = yes ]; then
        log "apt's python3-alsaaudio is older than 0.11: building pyalsaaudio>=0.11 into the venv"
        pip_install 'pyalsaaudio>=0.11'
    fi
    "$VENV/bin/python" -c 'import systemd.daemon, systemd.journal' ||
        die "python3-systemd is not importable from $VENV"
    "$VENV/bin/python" -c 'import alsaaudio, gpiozero' ||
        die "alsaaudio or gpiozero is not importable from $VENV"
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
    # Not booted with systemd: a chroot, e.g. building an SD card image. systemctl enable works
    # on the files alone; reloading or starting needs the running systemd.
    if [ ! -d /run/systemd/system ]; then
        log "systemd is not running here: enabling $SERVICE for the next boot"
        systemctl enable "$SERVICE"
        return
    fi
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

# What the steps below would do on this system, from the apt lists it has now.
print_plan() {
    log "dry run: nothing is changed"
    # shellcheck source=/dev/null
    . /etc/os-release
    printf 'system:   %s, %s\n' "${PRETTY_NAME:-unknown}" "$(dpkg --print-architecture)"
    plan_packages
    if [ -z "$(deb_version python3)" ]; then
        warn "apt knows no python3: the package lists are empty (run apt-get update first)"
    fi
    printf 'apt:      apt-get install %s\n' "${apt_want[*]}"
    local pkg
    for pkg in "${apt_want[@]}"; do
        printf '            %-20s %s\n' "$pkg" "$(deb_version "$pkg")"
    done
    for pkg in "${apt_skipped[@]}"; do
        printf 'skipped:  %s (not in the apt sources: not Raspberry Pi OS?)\n' "$pkg"
    done
    printf 'python:   %s\n' "$(deb_version python3)"
    printf 'venv:     python3 -m venv --system-site-packages %s\n' "$VENV"
    local nocompile=""
    [ "$compile" = yes ] || nocompile=" --no-compile"
    printf 'pip:      pip install%s --upgrade %s' "$nocompile" "$SRC"
    local constraint
    constraint=$(numpy_constraint)
    [ -z "$constraint" ] || printf " (constraint '%s')" "$constraint"
    printf '\n'
    [ "$alsa_build" = no ] ||
        printf "pip:      pip install%s 'pyalsaaudio>=0.11' (python3-alsaaudio is %s)\n" \
            "$nocompile" "$(deb_version python3-alsaaudio)"
    printf 'unit:     %s\n' "$UNIT_DIR/$SERVICE.service"
    printf 'sysusers: %s (user edge-appliance)\n' "$SYSUSERS_DIR/edge-appliance.conf"
    printf 'tmpfiles: %s\n' "$TMPFILES_DIR/edge-appliance.conf"
    if [ -e "$CONFIG" ]; then
        printf 'config:   keep %s\n' "$CONFIG"
    else
        printf 'config:   write %s (unit name "%s")\n' "$CONFIG" "$(unit_name)"
    fi
    if [ ! -d /run/systemd/system ]; then
        printf 'service:  systemctl enable %s (systemd is not running here)\n' "$SERVICE"
    elif [ "$start" = yes ]; then
        printf 'service:  systemctl enable --now %s\n' "$SERVICE"
    else
        printf 'service:  systemctl enable %s\n' "$SERVICE"
    fi
}

main() {
    parse_args "$@"
    check_system
    if [ "$dry_run" = yes ]; then
        print_plan
        return
    fi
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
