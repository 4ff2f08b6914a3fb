#!/usr/bin/env bash
# Installs and tests the project in arm64 Debian chroots, emulated with qemu-user-static: the
# Raspberry Pi's own OS releases, checked on any x86 machine.
#
#   scripts/test-arm64.sh [RELEASE...]     (default: trixie bookworm, run side by side)
#
# For each release it:
#   1. builds a minimal arm64 Debian chroot with debootstrap, once, cached under
#      build/arm64/RELEASE/ (remove that folder to rebuild it);
#   2. copies this tree into it and runs scripts/install-pi.sh --dry-run, then
#      scripts/install-pi.sh --no-start --no-compile: Debian's packages, a venv with the system
#      site packages in /opt/edge-appliance/venv, the project, the systemd files and the config;
#   3. adds the test tools to that venv and runs the tests listed in TESTS below.
# The log of each release is build/arm64/RELEASE.log; the last lines of each are printed.
#
# It needs root (debootstrap, chroot, mounts) and the kernel's binfmt_misc: it registers the
# qemu-aarch64 handler when there is none, and skips, saying why, where the kernel has no
# binfmt_misc. docs/install-pi.md says what runs and how long it takes.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$SRC/build/arm64
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
QEMU=/usr/bin/qemu-aarch64-static
# The processor qemu emulates: a Pi 4's Cortex-A72 (ARMv8.0-A, as the Zero 2 W's Cortex-A53),
# not qemu's default "max". A wheel built for a newer processor than a Pi's then fails here as
# it would there, and emulation is much faster: trixie is built with pointer authentication,
# which qemu emulates slowly on "max" and runs as no-ops on an ARMv8.0 processor (measured:
# trixie's Python 15 times faster; a run of tests/unit from over 10 minutes to about 1).
export QEMU_CPU=cortex-a72
# Run inside the chroot: what a Pi needs to boot into systemd and fetch from PyPI over TLS.
BASE_PACKAGES=systemd,ca-certificates
# The test tools these tiers use, at the dev extra's versions (no linters, no browser driver).
TEST_TOOLS=(pytest pytest-asyncio pytest-timeout hypothesis schemathesis twilio)
# What runs (docs/install-pi.md has the figures). No browser in the chroot, so no tests/browser.
# The unit and hardware-simulation tiers run whole but for the picamera2 backend (picamera2
# comes from the Raspberry Pi OS archive, which the chroots are not). Of the integration tier,
# everything but the tests that encode and decode video at a frame rate for many seconds or
# hold a native-speed time budget: under emulation they measure the emulator, not the code.
# The video path is still crossed on arm64 by signaling/test_encoded.py (H.264 through the SFU).
TESTS=(
    tests/unit
    tests/hwsim
    tests/integration/appliance
    tests/integration/control
    tests/integration/daemon
    tests/integration/provisioning
    tests/integration/media/test_data.py
    tests/integration/media/test_local.py
    tests/integration/signaling/test_data_tracks.py
    tests/integration/signaling/test_encoded.py
    tests/integration/signaling/test_join_refusals.py
    tests/integration/signaling/test_timeouts.py
)
IGNORE=(
    tests/hwsim/test_picamera2_backend.py
    tests/integration/daemon/test_chaos.py   # a 110 s budget for a restart storm
    tests/integration/daemon/test_metrics.py # frame and packet rates of video calls
    # These connect from 127.0.0.x with IP_BIND_ADDRESS_NO_PORT, which qemu-user (7.2) refuses
    # with ENOPROTOOPT: the emulator's limit, not the code's.
    tests/integration/appliance/test_net_limits.py
    tests/integration/daemon/test_connection_limits.py
    # mDNS on loopback: zeroconf sets IP_MULTICAST_IF, which qemu-user (7.2) refuses with
    # ENOPROTOOPT (qemu issue 1837), so neither the announcer nor the browser starts.
    tests/integration/daemon/test_hub_discovery.py
)
DESELECT=(
    # Timed on the real clock to a few tens of milliseconds: under emulation they time the
    # emulator. (The frame interval at 15 fps within 15 %; three collections in 0.22 s.)
    tests/hwsim/test_synthetic_source.py::test_both_layers_at_configured_sizes_and_rate
    tests/unit/provisioning/test_units.py::test_status_hub_one_collector_for_many_pages
    # zeroconf on loopback: IP_MULTICAST_IF, refused by qemu-user (see IGNORE above).
    tests/integration/provisioning/test_mdns.py::test_announcer_found_on_loopback
)

log() { printf '==> %s\n' "$*"; }
die() {
    printf 'test-arm64: %s\n' "$*" >&2
    exit 1
}

# Runs this script again under sudo when not root. Exits 0 (a skip, not a failure) where that
# cannot be: no sudo, or a sudo that would ask for a password with no terminal to type it in.
become_root() {
    [ "$(id -u)" -ne 0 ] || return 0
    if ! command -v sudo >/dev/null; then
        log "SKIPPED: needs root (debootstrap, chroot, mounts), and there is no sudo here"
        exit 0
    fi
    if ! sudo -n true 2>/dev/null && ! [ -t 0 ]; then
        log "SKIPPED: needs root (debootstrap, chroot, mounts), and sudo asks for a password"
        exit 0
    fi
    exec sudo "$0" "$@"
}

# Mounts binfmt_misc when it is not; exits 0 (a skip, not a failure) when this kernel cannot run
# arm64 binaries.
check_binfmt() {
    local misc=/proc/sys/fs/binfmt_misc
    [ ! -e "$misc/register" ] || return 0
    if ! grep -qw binfmt_misc /proc/filesystems 2>/dev/null && ! modprobe binfmt_misc 2>/dev/null; then
        log "SKIPPED: this kernel has no binfmt_misc, so it cannot run arm64 binaries"
        exit 0
    fi
    log "mounting binfmt_misc on $misc"
    mount -t binfmt_misc binfmt_misc "$misc" || {
        log "SKIPPED: binfmt_misc cannot be mounted here (a container without the privilege?)"
        exit 0
    }
}

# Registers qemu-aarch64-static for arm64 binaries unless a handler that works inside a chroot
# is there.
register_qemu() {
    local misc=/proc/sys/fs/binfmt_misc
    # F: the kernel opens the interpreter now, so it works inside the chroot without a copy.
    if [ -e "$misc/qemu-aarch64" ] && grep -qx enabled "$misc/qemu-aarch64" &&
        grep -q '^flags: .*F' "$misc/qemu-aarch64"; then
        return
    fi
    log "no arm64 binfmt handler usable in a chroot here: registering $QEMU as qemu-aarch64"
    [ ! -e "$misc/qemu-aarch64" ] || echo -1 >"$misc/qemu-aarch64"
    printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$QEMU"':F' \
        >"$misc/register"
}

bootstrap() {
    local release=$1 root=$BUILD/$1/root
    if [ -e "$BUILD/$release/bootstrapped" ]; then
        log "$release: reusing the chroot in $root"
        return
    fi
    log "$release: debootstrap --arch=arm64 into $root"
    rm -rf "$root"
    mkdir -p "$root"
    debootstrap --arch=arm64 --variant=minbase --include="$BASE_PACKAGES" \
        "$release" "$root" "$MIRROR"
    # Before the chroot's apt-get update: apt's sandbox user cannot be switched to under some
    # emulators, and the sources are signed anyway.
    echo 'APT::Sandbox::User "root";' >"$root/etc/apt/apt.conf.d/99sandbox"
    touch "$BUILD/$release/bootstrapped"
}

# Mounts what the tests need inside the chroot; umount_all undoes it.
mount_all() {
    local root=$1
    mount -t proc proc "$root/proc"
    mount -t sysfs sys "$root/sys"
    private_dev "$root/dev"
    mount -t tmpfs tmpfs "$root/tmp"
    mount -t tmpfs tmpfs "$root/run"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    # debootstrap writes no /etc/hosts; a Pi's has localhost, which the tests connect to.
    grep -qw localhost "$root/etc/hosts" 2>/dev/null ||
        printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >>"$root/etc/hosts"
    # This machine's own certificate authorities (a proxy's, a company's), the Debian way;
    # install_steps runs update-ca-certificates when one is new (slow under emulation).
    local ca
    mkdir -p "$root/usr/local/share/ca-certificates"
    for ca in /usr/local/share/ca-certificates/*.crt; do
        [ -e "$ca" ] || continue
        cmp -s "$ca" "$root$ca" && continue
        cp "$ca" "$root$ca"
        touch "$root/var/tmp/update-ca-certificates"
    done
}

# A /dev of the chroot's own: a tmpfs holding the host's few character devices the tests
# use, each bind-mounted on its own, a private devpts and a /dev/shm. Never the host's /dev
# itself: a run killed before umount_all leaves its mounts behind, and deleting the build
# directory then (rm -rf) would delete the host's device nodes through them. A node that is
# a mount point cannot be unlinked, so here nothing of the host's can be deleted.
private_dev() {
    local dev=$1 node
    mount -t tmpfs -o mode=755,nosuid tmpfs "$dev"
    for node in null zero full random urandom tty; do
        touch "$dev/$node"
        mount --bind "/dev/$node" "$dev/$node"
    done
    mkdir -m 755 "$dev/pts"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$dev/pts"
    ln -s pts/ptmx "$dev/ptmx"
    mkdir -m 1777 "$dev/shm"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$dev/shm"
    ln -s /proc/self/fd "$dev/fd"
    ln -s /proc/self/fd/0 "$dev/stdin"
    ln -s /proc/self/fd/1 "$dev/stdout"
    ln -s /proc/self/fd/2 "$dev/stderr"
}

umount_all() {
    local root=$1 m
    for m in run tmp dev sys proc; do
        if mountpoint -q "$root/$m"; then
            umount -R "$root/$m" 2>/dev/null || umount -lR "$root/$m" || true
        fi
    done
}

# Copies the tree as git sees it (tracked and new files, nothing ignored) to /src in the chroot.
copy_tree() {
    local root=$1
    rm -rf "$root/src"
    mkdir -p "$root/src"
    # --ignore-failed-read: a tracked file deleted in the work tree is simply left out.
    (cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
        tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$root/src"
}

# The install steps inside the chroot, as one shell script (on the machine's network: apt, PyPI).
install_steps() {
    cat <<EOF
set -euo pipefail
cd /src
if [ -e /var/tmp/update-ca-certificates ]; then
    update-ca-certificates >/dev/null
    rm /var/tmp/update-ca-certificates
fi
. /etc/os-release
echo "==> \$PRETTY_NAME on \$(uname -m)"
echo "==> install-pi.sh --dry-run"
./scripts/install-pi.sh --dry-run
echo "==> install-pi.sh --no-start --no-compile (at \$SECONDS s)"
./scripts/install-pi.sh --no-start --no-compile
systemctl is-enabled edge-appliance
/opt/edge-appliance/venv/bin/python --version
echo "==> test tools (at \$SECONDS s)"
/opt/edge-appliance/venv/bin/python - ${TEST_TOOLS[*]} >/tmp/test-tools.txt <<'PY'
import re, sys, tomllib
dev = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["dev"]
names = set(sys.argv[1:])
print("\\n".join(r for r in dev if re.match(r"[A-Za-z0-9_.-]+", r)[0] in names))
PY
/opt/edge-appliance/venv/bin/pip install --quiet --no-compile -r /tmp/test-tools.txt
# The tests import this tree (/src), not the installed copy: the send helper the installer
# compiled goes beside its source, where pip install -e puts it. No helper built: this fails.
cp /opt/edge-appliance/venv/lib/python3*/site-packages/edge_sfu/media/seam/_fastpath.*.so \\
    edge_sfu/media/seam/
EOF
}

# The test steps inside the chroot (in a network namespace of their own, see run_tests).
test_steps() {
    cat <<EOF
set -euo pipefail
cd /src
echo "==> pytest ${TESTS[*]}"
PYTHONPATH=/src/scripts /opt/edge-appliance/venv/bin/python -u -m pytest -p pytest_emulated \
    -p no:cacheprovider -o console_output_style=times \
    -rfEs --durations=15 \
    --junitxml=/var/tmp/test-arm64.xml -m 'not browser and not pi' \
    ${IGNORE[*]/#/--ignore=} ${DESELECT[*]/#/--deselect=} ${TESTS[*]}
EOF
}

# Runs stdin in the chroot $1 with a clean environment: the proxy and package index settings of
# this machine pass through; pip (bookworm's bundles certifi) is pointed at the system's CAs.
in_chroot() {
    local pass=() var
    for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY \
        PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT; do
        [ -z "${!var:-}" ] || pass+=("$var=${!var}")
    done
    chroot "$1" /usr/bin/env -i HOME=/root LC_ALL=C.UTF-8 QEMU_CPU="$QEMU_CPU" \
        DEBIAN_FRONTEND=noninteractive \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
        "${pass[@]}" /bin/bash -s
}

# The tests run in a network namespace of their own: the two releases side by side, and other
# test runs on this machine, never see each other's ports or mDNS announcements. Besides
# loopback it has one veth address, as aioice gathers no ICE candidate on 127.0.0.1.
run_tests() {
    local root=$1
    test_steps | unshare --net bash -c "
        set -e
        ip link set lo up
        ip link add arm0 type veth peer name arm1
        ip addr add 10.213.0.1/24 dev arm0
        ip link set arm0 up
        ip link set arm1 up
        $(declare -f in_chroot)
        in_chroot '$root'"
}

run_release() {
    local release=$1 root=$BUILD/$1/root start=$SECONDS
    bootstrap "$release"
    log "$release: bootstrapped after $((SECONDS - start)) s"
    # what a run killed before its umount_all (a closed terminal, a CI timeout) left mounted
    umount_all "$root"
    copy_tree "$root"
    mount_all "$root"
    trap 'umount_all "$root"' EXIT
    local rc=0
    install_steps | in_chroot "$root" || rc=$?
    log "$release: installed after $((SECONDS - start)) s"
    if [ $rc -eq 0 ]; then
        run_tests "$root" || rc=$?
    fi
    umount_all "$root"
    trap - EXIT
    log "$release: exit $rc after $((SECONDS - start)) s"
    return $rc
}

main() {
    local releases=("$@") release
    [ ${#releases[@]} -gt 0 ] || releases=(trixie bookworm)
    for release in "${releases[@]}"; do
        case "$release" in
            -h | --help)
                awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
                exit 0
                ;;
            trixie | bookworm) ;;
            *) die "unknown release: $release (trixie or bookworm)" ;;
        esac
    done
    become_root "${releases[@]}"
    local native=no
    [ "$(uname -m)" = aarch64 ] && native=yes
    [ $native = yes ] || check_binfmt
    # After the checks above: a machine that cannot run this skips before installing anything.
    "$SRC/scripts/system-deps.sh" arm64
    [ $native = yes ] || register_qemu
    mkdir -p "$BUILD"
    local pids=() start=$SECONDS
    for release in "${releases[@]}"; do
        log "$release: started, log in $BUILD/$release.log"
        run_release "$release" >"$BUILD/$release.log" 2>&1 &
        pids+=($!)
    done
    local i failed=()
    for i in "${!releases[@]}"; do
        wait "${pids[$i]}" || failed+=("${releases[$i]}")
    done
    for release in "${releases[@]}"; do
        echo "---- $release (last lines of $BUILD/$release.log)"
        tail -n 15 "$BUILD/$release.log"
    done
    # The processor time too: on a busy machine it says more than the wall time does.
    # times into a file: in a pipe or $(...) it runs in a subshell, which has no children.
    local cpu used
    used=$(mktemp)
    times >"$used"
    cpu=$(awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, "m"); s += t[1] * 60 + t[2] } }
        END { printf "%d", s }' "$used")
    rm -f "$used"
    log "arm64: ${releases[*]} in $((SECONDS - start)) s, ${cpu} s of processor time"
    [ ${#failed[@]} -eq 0 ] || die "failed on: ${failed[*]}"
}

main "$@"
