"""What reading the RFC 6464 audio level costs the receive path, per audio packet.

The steps ``seam.ingress`` takes for each SRTP packet of an audio m-line, on the engine's real
objects (a libsrtp session, ``parse_rtp_light``, an ``IncomingTrack`` feeding a ``Producer``),
run on pre-protected Opus packets as Chromium sends them (audio level, transport-cc and mid
extensions), without and then with the level read (``audio_level`` and
``IncomingTrack.handle_level``, which feeds the producer's ``LevelMeter``). The base path stops
at the producer (no subscriber), so the read's share of it is larger than its share of a
packet forwarded to subscribers.

Usage: ``python benchmarks/audio_level.py [packets] [rounds]`` prints (one JSON object) the
best-of-rounds microseconds per packet of each mode and the difference. Under
``valgrind --tool=callgrind`` run ``python benchmarks/audio_level.py N 1 MODE`` with MODE
``gen`` (only making the packets), ``base`` and ``level``, for two values of N: the
differences of the instruction counts over the difference of N are the per-packet counts,
repeatable on a loaded machine.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time

from aiortc import RTCRtpCodecParameters
from pylibsrtp import Policy, Session

from edge_sfu.media import OPUS
from edge_sfu.media.incoming import IncomingTrack
from edge_sfu.media.layers import LayerSpec
from edge_sfu.media.producer import Producer
from edge_sfu.media.seam import (
    ReceiveParams,
    audio_level,
    parse_rtp_light,
    transport_sequence,
)

PT = 111
SSRC = 0x1234_5678
EXT_LEVEL, EXT_TWCC, EXT_MID = 1, 3, 4  # Chromium's ids
KEY = bytes(range(30))


def _packets(count: int) -> list[bytes]:
    """``count`` SRTP-protected Opus packets, 20 ms apart, speech at -30 dBov."""
    policy = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    sender = Session(policy=policy)
    # one-byte header extensions: level (1 byte, voice bit set), twcc (2), mid "0" (1)
    ext = bytes([EXT_LEVEL << 4, 0x80 | 30, EXT_TWCC << 4 | 1, 0, 0, EXT_MID << 4, 0x30, 0])
    out = []
    for n in range(count):
        twcc = ext[:3] + struct.pack("!H", n & 0xFFFF) + ext[5:]
        header = struct.pack("!BBHII", 0x90, PT, n & 0xFFFF, n * 960, SSRC)
        plain = header + struct.pack("!HH", 0xBEDE, len(twcc) // 4) + twcc + os.urandom(80)
        out.append(sender.protect(plain))
    return out


def _receiver() -> tuple[Session, IncomingTrack]:
    session = Session(policy=Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND))
    track = IncomingTrack("0", "audio", "mic", lambda packet: True)
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=PT)
    track.receive_started(ReceiveParams("0", {PT: opus}))
    producer = Producer(
        producer_id="MT1",
        participant_id="PA1",
        codec=OPUS,
        layers=[LayerSpec("default")],
        request_keyframe=lambda layer: None,
        request_retransmission=lambda layer, seqs: None,
        cache_size=512,
        keyframe_interval_s=1.0,
    )
    track.attach(producer)
    return session, track


def run(packets: list[bytes], with_level: bool) -> float:
    """Seconds to take ``packets`` through the receive path."""
    session, track = _receiver()
    on_level = track.level_handler if with_level else None
    handle_rtp = track.handle_rtp
    start = time.perf_counter()
    for data in packets:
        plain = session.unprotect(data)
        packet = parse_rtp_light(plain)
        transport_sequence(plain, EXT_TWCC) if plain[0] & 0x10 else None
        if on_level is not None and EXT_LEVEL and plain[0] & 0x10:
            level = audio_level(plain, EXT_LEVEL)
            if level is not None:
                on_level(level)
        handle_rtp(packet)
    elapsed = time.perf_counter() - start
    if with_level:
        assert track.producer is not None and track.producer.level is not None
        assert track.producer.level.speaking(time.monotonic())  # the level was read
    return elapsed


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    only = sys.argv[3] if len(sys.argv) > 3 else None
    packets = _packets(count)
    if only is not None:  # one mode once (for callgrind); "gen" only makes the packets
        if only != "gen":
            run(packets, only == "level")
        return
    best = {"base": float("inf"), "level": float("inf")}
    for _ in range(rounds):  # interleaved, so load from other processes falls on both
        for mode in best:
            best[mode] = min(best[mode], run(packets, mode == "level"))
    base_us, level_us = (best[m] / count * 1e6 for m in ("base", "level"))
    figures = {
        "base_us_per_packet": round(base_us, 3),
        "level_us_per_packet": round(level_us, 3),
        "added_us_per_packet": round(level_us - base_us, 3),
        "added_percent_of_base": round((level_us / base_us - 1) * 100, 1),
        "packets": count,
        "rounds": rounds,
        "loadavg_1min": os.getloadavg()[0],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
