#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those missing.
#   system-deps.sh run    build deps for the hardware bindings
#   system-deps.sh test   the above plus chromium and janus for the suite and benchmarks
#   system-deps.sh arm64  debootstrap and qemu-user-static for make test-arm64 (only those)
set -euo pipefail
# ffmpeg composes recordings (and its ffprobe checks them in the suite). gcc and python3-dev
# build the hardware bindings from PyPI and the SFU's compiled send helper.
want=(gcc python3-dev libasound2-dev libsystemd-dev pkg-config libcap-dev ffmpeg)
if [ "${1:-run}" = "arm64" ]; then
    want=(debootstrap qemu-user-static)
    # Debian 12's debootstrap needs this keyring for trixie's signatures.
    want+=(debian-archive-keyring)
elif [ "${1:-run}" = "test" ]; then
    want+=(chromium chromium-driver janus iproute2 systemd shellcheck)
    # Not simple-whip-server (WHIP in front of Janus): its native node-websocket needs
    # Debian's Node 18 (libnode108), which conflicts with a NodeSource nodejs; the suite puts
    # its own WHIP endpoint in front of Janus instead (docs/roles.md).
    # npm installs TypeScript to type-check the browser client (a node from elsewhere will do).
    command -v npm >/dev/null || want+=(nodejs npm)
fi
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "system-deps: not a Debian system; please install: ${missing[*]}" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
