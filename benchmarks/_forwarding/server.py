"""The SFU under test, in its own process so its CPU is its own.

``python -m benchmarks._forwarding.server edge|relay`` reads one JSON command per line on
stdin and answers one JSON line on stdout:

* ``{"op": "publish", "sdp": offer}`` -> ``{"sdp": answer}`` (``relay``: the publisher offers)
* ``{"op": "publish-offer"}`` -> ``{"sdp": offer}`` (``edge``: the SFU offers, as in production)
* ``{"op": "publish-answer", "sdp": answer}`` -> ``{}``
* ``{"op": "subscribe", "id": name}`` -> ``{"sdp": offer}`` (the SFU offers)
* ``{"op": "answer", "id": name, "sdp": answer}`` -> ``{}``
* ``{"op": "stats"}`` -> ``{"forwarded": n}``
* ``{"op": "room-publish-offer", "id": name}`` -> ``{"sdp": offer}``: a participant of a
  room publishing simulcast video (``media.SIMULCAST``) and audio (``edge``, the capacity
  benchmark); ``{"op": "room-publish-answer", "id": name, "sdp": answer}`` -> ``{}``
* ``{"op": "room-subscribe", "id": name, "own": publisher, "big": other}`` ->
  ``{"sdp": offer}``: every publisher's but ``own``'s video at 320x180 (``big``'s at
  1280x720) and audio; ``{"op": "room-stats"}`` -> ``{"consumers": [...]}``

``edge`` is this project's forwarder; ``relay`` is aiortc's stock path: the publisher's
tracks are decoded, and ``MediaRelay`` feeds one encoder per subscriber.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from edge_sfu.media import PublicationSlot, Router, Transport
from edge_sfu.media.layers import LayerSpec


class EdgeServer:
    def __init__(self) -> None:
        self.router = Router("bench")
        self.producers: list[Any] = []
        self.subs: dict[str, Any] = {}
        self.publisher: Transport | None = None
        self.slots: list[PublicationSlot] = []
        self.room_slots: dict[str, tuple[Transport, list[PublicationSlot]]] = {}
        self.room_producers: dict[str, list[Any]] = {}

    async def publish_offer(self) -> str:
        """A receive-only m-line for the publisher's video and one for its audio."""
        self.publisher = self.router.create_transport("pub")
        self.slots = [
            self.publisher.add_publication_slot("video", codec="H264"),
            self.publisher.add_publication_slot("audio", codec="opus"),
        ]
        return await self.publisher.create_offer()

    async def publish_answer(self, sdp: str) -> None:
        assert self.publisher is not None
        await self.publisher.handle_answer(sdp)
        incoming = [self.publisher.incoming[str(slot.mid)] for slot in self.slots]
        self.producers = [self.router.produce(self.publisher, t) for t in incoming]

    async def subscribe(self, name: str) -> str:
        transport = self.router.create_transport(name)
        self.subs[name] = transport
        for producer in self.producers:
            self.router.consume(producer, transport)
        return await transport.create_offer()

    async def answer(self, name: str, sdp: str) -> None:
        await self.subs[name].handle_answer(sdp)

    async def room_publish_offer(self, name: str) -> str:
        from benchmarks._forwarding.media import SIMULCAST  # the capacity benchmark only

        transport = self.router.create_transport(f"{name}-pub")
        layers = [LayerSpec(rid, w, h) for rid, w, h, _ in SIMULCAST]
        self.room_slots[name] = (
            transport,
            [
                transport.add_publication_slot("video", codec="H264", simulcast=layers),
                transport.add_publication_slot("audio", codec="opus"),
            ],
        )
        return await transport.create_offer()

    async def room_publish_answer(self, name: str, sdp: str) -> None:
        transport, slots = self.room_slots[name]
        await transport.handle_answer(sdp)
        self.room_producers[name] = [
            self.router.produce(transport, transport.incoming[str(slot.mid)]) for slot in slots
        ]

    async def room_subscribe(self, name: str, own: str, big: str) -> str:
        transport = self.router.create_transport(name)
        self.subs[name] = transport
        for other, producers in self.room_producers.items():
            if other == own:
                continue
            for producer in producers:
                consumer = self.router.consume(producer, transport)
                if producer.kind == "video":
                    consumer.set_preferred_size(*((1280, 720) if other == big else (320, 180)))
        return await transport.create_offer()

    def room_stats(self) -> list[Any]:
        """(subscriber, kind, layer forwarded, switched off, packets sent) per consumer."""
        consumers: list[Any] = [
            (name, c.kind, c.current_layer, c.switched_off, c.packets_sent)
            for name, t in self.subs.items()
            for c in t.consumers.values()
        ]
        # what each subscriber's send path could not hand to the kernel
        dropped = [
            (name, sum(p.packets_dropped for p in t._paths.values()))
            for name, t in self.subs.items()
        ]
        return [*consumers, ("dropped", dropped)]

    def forwarded(self) -> int:
        return sum(c.packets_sent for t in self.subs.values() for c in t.consumers.values())

    async def close(self) -> None:
        await self.router.close()


class RelayServer:
    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.tracks: list[Any] = []
        self.pcs: list[RTCPeerConnection] = []
        self.subs: dict[str, RTCPeerConnection] = {}
        self.sinks: list[asyncio.Task[None]] = []

    def _pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        return pc

    async def publish(self, sdp: str) -> str:
        pc = self._pc()
        pc.on("track", self.tracks.append)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def subscribe(self, name: str) -> str:
        pc = self._pc()
        self.subs[name] = pc
        for track in self.tracks:
            tx = pc.addTransceiver(self.relay.subscribe(track), direction="sendonly")
            mime = "video/H264" if track.kind == "video" else "audio/opus"
            tx.setCodecPreferences(
                [c for c in RTCRtpSender.getCapabilities(track.kind).codecs if c.mimeType == mime]
            )
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)

    async def answer(self, name: str, sdp: str) -> None:
        await self.subs[name].setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    def forwarded(self) -> int:
        return 0  # counted at the receivers

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()


async def main(mode: str) -> None:
    server: Any = EdgeServer() if mode == "edge" else RelayServer()
    loop = asyncio.get_running_loop()
    # a room's answer SDP grows with its size (one m-line per track): past asyncio's 64 KiB
    # line limit at 28 participants
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        op = cmd["op"]
        out: dict[str, Any] = {}
        if op == "publish":
            out["sdp"] = await server.publish(cmd["sdp"])
        elif op == "publish-offer":
            out["sdp"] = await server.publish_offer()
        elif op == "publish-answer":
            await server.publish_answer(cmd["sdp"])
        elif op == "subscribe":
            out["sdp"] = await server.subscribe(cmd["id"])
        elif op == "answer":
            await server.answer(cmd["id"], cmd["sdp"])
        elif op == "room-publish-offer":
            out["sdp"] = await server.room_publish_offer(cmd["id"])
        elif op == "room-publish-answer":
            await server.room_publish_answer(cmd["id"], cmd["sdp"])
        elif op == "room-subscribe":
            out["sdp"] = await server.room_subscribe(cmd["id"], cmd["own"], cmd["big"])
        elif op == "room-stats":
            out["consumers"] = server.room_stats()
        elif op == "stats":
            out["forwarded"] = server.forwarded()
        elif op == "quit":
            break
        print(json.dumps(out), flush=True)
    await server.close()


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "edge"
    profile = os.environ.get("FWD_PROFILE")
    if os.environ.get("FWD_LOOP") == "uvloop":  # to measure uvloop against asyncio's loop
        import uvloop  # type: ignore[import-not-found]  # not a dependency

        uvloop.run(main(mode))
    elif profile:
        import cProfile

        cProfile.run(f"asyncio.run(main({mode!r}))", profile)
    else:
        asyncio.run(main(mode))
