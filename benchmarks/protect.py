"""One forwarded copy's send-side work, compiled helper against pure Python.

What ``SendPath`` does for each copy of each packet once it is ready: the rewritten 12-byte
RTP header, the transport-wide sequence number inserted as a header extension, header and
payload written into the batch arena, SRTP-protected in place (AES-CM, HMAC-SHA1-80), queued
with its iovec's length. ``egress.BatchWriter.queue`` with the compiled helper
(``edge_sfu/media/seam/_fastpath.c``) and with ``EDGE_SFU_PURE_PYTHON=1``, on real libsrtp
sessions; nothing is sent (the system call is ``benchmarks/send_calls.py``'s subject), so
this is the part of a copy's cost the helper can change. A 1150-byte payload (a 720p
frame's packet), 60,000 copies per round (fewer than 65,536: SRTP refuses a reused index),
rounds alternating so that other load falls on both alike.

Reported: µs per copy, medians of the rounds, and the loop's own cost (packing the header
alone) to subtract. Runs with no arguments in about 10 s; the last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pylibsrtp  # noqa: E402

from edge_sfu.media.seam import egress  # noqa: E402

COPIES = 60_000
ROUNDS = 5
PAYLOAD = os.urandom(1150)
HEADER = struct.Struct("!BBHII")


def _session() -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=os.urandom(30),
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    return pylibsrtp.Session(policy)


def _round(sock: socket.socket, addr: tuple[str, int], mode: str) -> float:
    """µs per copy in one round (``mode``: compiled, python, or loop: the header alone)."""
    os.environ[egress.PURE_PYTHON_ENV] = "1" if mode == "python" else "0"
    writer = egress.BatchWriter.create(sock, addr, _session())
    assert writer is not None
    assert mode != "compiled" or writer.compiled, "the compiled helper is not built"
    pack = HEADER.pack
    queue = writer.queue
    started = time.perf_counter()
    for seq in range(COPIES):
        header = pack(0x80, 96, seq, 90 * seq, 0x1234)
        if mode != "loop" and not queue(header, PAYLOAD, 3, seq, False):
            raise RuntimeError("a copy was refused")
        if writer.pending == egress.BATCH_SLOTS:
            writer._lens = []  # drop the batch unsent: sending is not measured here
            writer._numbered = []
    return (time.perf_counter() - started) / COPIES * 1e6


def main() -> dict[str, object]:
    if not egress.fast_path_available():
        raise SystemExit("the compiled helper is not built (pip install needs gcc, python3-dev)")
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = sink.getsockname()
    figures: dict[str, list[float]] = {"compiled": [], "python": [], "loop": []}
    for _ in range(ROUNDS):
        for mode in figures:
            figures[mode].append(_round(sock, addr, mode))
    result: dict[str, object] = {
        f"{mode}_us_per_copy": round(statistics.median(values), 3)
        for mode, values in figures.items()
    }
    loop = statistics.median(figures["loop"])
    compiled = statistics.median(figures["compiled"]) - loop
    python = statistics.median(figures["python"]) - loop
    result["compiled_over_python"] = round(compiled / python, 3)
    result["saved_us_per_copy"] = round(python - compiled, 3)
    result["rounds"] = {mode: [round(v, 3) for v in values] for mode, values in figures.items()}
    result["loadavg_1min"] = round(os.getloadavg()[0], 2)
    return result


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
