"""How to hand a burst of datagrams to the kernel: the measurement behind ``seam/egress.py``.

A frame of 11 RTP-sized datagrams (1200 bytes) to each of K=8 receivers (each its own UDP
socket, as each subscriber has its own transport), on loopback, the receivers in another
process asleep in ``epoll`` between bursts (so each burst pays for waking them, as in the
SFU). Four ways, in rounds so that other load falls on all alike:

* ``sendto``: one call per datagram, subscriber by subscriber;
* ``sendto-interleaved``: one call per datagram, datagram by datagram across subscribers
  (the fan-out order that lets the last subscriber's first packet out earliest);
* ``sendmmsg``: one call per subscriber, libc through cffi;
* ``gso``: one call per subscriber, the burst as one UDP GSO message (``UDP_SEGMENT``).

Reported: sending thread CPU time per datagram (µs) and wall time per burst (ms), medians
of the rounds. Runs with no arguments in about 20 s; the last line is one JSON object.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import selectors
import socket
import statistics
import struct
import time
from typing import Any

import cffi  # type: ignore[import-untyped]

K = 8
PACKETS = 11
SIZE = 1200
BURSTS = 150
ROUNDS = 6

_ffi = cffi.FFI()
_ffi.cdef(
    """
struct iovec { void *iov_base; size_t iov_len; };
struct msghdr { void *msg_name; unsigned int msg_namelen; struct iovec *msg_iov;
  size_t msg_iovlen; void *msg_control; size_t msg_controllen; int msg_flags; };
struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
int sendmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen, int flags);
"""
)


def _receive(ports: Any, stop: Any) -> None:
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(K):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
        socks.append(sock)
    ports.put([s.getsockname() for s in socks])
    while not stop.is_set():
        for key, _ in sel.select(0.2):
            try:
                while True:
                    key.fileobj.recv(2048)  # type: ignore[union-attr]
            except BlockingIOError:
                pass


def main() -> dict[str, Any]:
    load = os.getloadavg()[0]
    ports: Any = mp.Queue()
    stop = mp.Event()
    child = mp.Process(target=_receive, args=(ports, stop))
    child.start()
    addrs = ports.get()
    libc = _ffi.dlopen(None)
    senders = []
    for _ in addrs:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        senders.append(sock)
    data = [os.urandom(SIZE) for _ in range(PACKETS)]
    arena = _ffi.new("char[]", PACKETS * SIZE)
    for i, d in enumerate(data):
        _ffi.memmove(arena + i * SIZE, d, SIZE)
    msgs = _ffi.new("struct mmsghdr[]", PACKETS)
    iovs = _ffi.new("struct iovec[]", PACKETS)
    names = []
    for host, port in addrs:
        name = _ffi.new("char[]", 16)
        packed = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port)
        _ffi.memmove(name, packed + socket.inet_aton(host) + bytes(8), 16)
        names.append(name)
    fds = [s.fileno() for s in senders]
    ctrl = _ffi.new("char[]", 24)
    _ffi.memmove(ctrl, struct.pack("=QiiH", 18, 17, 103, SIZE) + bytes(6), 24)

    def plain() -> None:
        for sock, addr in zip(senders, addrs, strict=True):
            for d in data:
                sock.sendto(d, addr)

    def interleaved() -> None:
        for d in data:
            for sock, addr in zip(senders, addrs, strict=True):
                sock.sendto(d, addr)

    def mmsg() -> None:
        for fd, name in zip(fds, names, strict=True):
            for i in range(PACKETS):
                iovs[i].iov_base = arena + i * SIZE
                iovs[i].iov_len = SIZE
                hdr = msgs[i].msg_hdr
                hdr.msg_name = name
                hdr.msg_namelen = 16
                hdr.msg_iov = iovs + i
                hdr.msg_iovlen = 1
            libc.sendmmsg(fd, msgs, PACKETS, 0)

    def gso() -> None:
        for fd, name in zip(fds, names, strict=True):
            for i in range(PACKETS):
                iovs[i].iov_base = arena + i * SIZE
                iovs[i].iov_len = SIZE
            hdr = msgs[0].msg_hdr
            hdr.msg_name = name
            hdr.msg_namelen = 16
            hdr.msg_iov = iovs
            hdr.msg_iovlen = PACKETS
            hdr.msg_control = ctrl
            hdr.msg_controllen = 24
            libc.sendmmsg(fd, msgs, 1, 0)
            hdr.msg_control = _ffi.NULL
            hdr.msg_controllen = 0

    ways = {"sendto": plain, "sendto-interleaved": interleaved, "sendmmsg": mmsg, "gso": gso}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for _ in range(ROUNDS):
        for name, send in ways.items():
            cpu = wall = 0.0
            for _ in range(BURSTS):
                time.sleep(0.003)  # the receivers go back to sleep
                c0, w0 = time.thread_time(), time.perf_counter()
                send()
                wall += time.perf_counter() - w0
                cpu += time.thread_time() - c0
            samples[name].append((cpu / (BURSTS * K * PACKETS) * 1e6, wall / BURSTS * 1e3))
    stop.set()
    child.join()
    result: dict[str, Any] = {}
    for name, rows in samples.items():
        result[f"{name}_cpu_us_per_datagram"] = round(statistics.median(r[0] for r in rows), 2)
        result[f"{name}_wall_ms_per_burst"] = round(statistics.median(r[1] for r in rows), 3)
    result.update({"k": K, "datagrams_per_subscriber": PACKETS, "loadavg_1min": round(load, 2)})
    for name, rows in samples.items():
        print(name, [f"{c:.2f} us, {w:.3f} ms" for c, w in rows], flush=True)
    return result


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
