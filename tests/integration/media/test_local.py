"""Local producers and consumers: encoded frames in and out of the SFU, no loopback WebRTC."""

from __future__ import annotations

import asyncio
import itertools

from edge_sfu.media import H264, LayerSpec, LocalProducer, Router
from tests.integration.media.peers import H264Decoder, LayeredCamera, Subscriber
from tests.support.waiting import wait_for

SIZES = {"main": (640, 360), "lores": (320, 180)}
LAYERS = [LayerSpec(name, w, h) for name, (w, h) in SIZES.items()]


def _layered_producer(router: Router, camera: LayeredCamera) -> LocalProducer:
    """A local H.264 producer with both LAYERS, its keyframes and layers driven by ``camera``."""
    return router.produce_local(
        "PK",
        H264,
        layers=LAYERS,
        on_keyframe_request=camera.on_keyframe_request,
        on_wanted_layers=camera.on_wanted_layers,
    )


async def test_local_producer_to_local_consumer_with_layer_switch() -> None:
    router = Router("RM-local")
    camera = LayeredCamera(SIZES)
    producer = _layered_producer(router, camera)
    decoder = H264Decoder()
    consumer = router.consume_local(producer, decoder)
    consumer.set_preferred_size(320, 180)
    camera.start(producer)
    try:
        await wait_for(lambda: len(decoder.sizes) >= 10, what="small frames")
        assert set(decoder.sizes) == {(320, 180)}
        # nobody wants the main layer: the camera was told and stopped encoding it
        assert producer.wanted_layers == {"lores"}
        main_before = camera.encoded["main"]
        await asyncio.sleep(0.5)
        assert camera.encoded["main"] == main_before
        consumer.set_preferred_size(1280, 720)
        n = len(decoder.sizes)
        await wait_for(lambda: decoder.sizes[-1] == (640, 360), what="switch to main")
        after = decoder.sizes[n:]
        first_big = after.index((640, 360))
        assert set(after[first_big:]) == {(640, 360)}  # no flapping back
        assert consumer.layer_switches == 1
        assert decoder.errors == 0
        assert producer.wanted_layers == {"main"}
        assert camera.wanted_history[-1] == frozenset({"main"})
        # frames are whole access units: every delivered keyframe decoded
        assert consumer.frames_dropped == 0
    finally:
        camera.stop()
        await router.close()
    assert producer.closed and consumer.closed


async def test_local_producer_to_webrtc_subscriber_layers_and_continuity() -> None:
    router = Router("RM-local-rtc")
    camera = LayeredCamera(SIZES)
    producer = _layered_producer(router, camera)
    sub = Subscriber(router, "PB")
    consumer = router.consume(producer, sub.transport)
    consumer.set_preferred_size(320, 180)
    await sub.negotiate()
    camera.start(producer)
    try:
        await wait_for(lambda: sub.video_count() >= 10, what="small frames at subscriber")
        sizes = [s for frames in sub.frames.values() for s in frames]
        assert set(sizes) == {(320, 180)}
        consumer.set_preferred_size(640, 360)
        await wait_for(
            lambda: [s for f in sub.frames.values() for s in f][-1] == (640, 360),
            what="big frames at subscriber",
        )
        assert consumer.layer_switches == 1
        # sequence numbers stayed continuous across the switch: the subscriber lost nothing
        stats = await sub.pc.getReceivers()[0].getStats()
        inbound = [s for s in stats.values() if s.type == "inbound-rtp"]
        assert inbound and inbound[0].packetsLost == 0
        assert inbound[0].packetsReceived > 20
        assert producer.wanted_layers == {"main"}
    finally:
        camera.stop()
        await sub.close()
        await router.close()


async def test_opus_both_ways_between_local_code_and_webrtc_peers() -> None:
    """The kiosk's microphone to a browser-like peer, and a peer's voice to its speaker."""
    import fractions

    import av
    import numpy as np

    from edge_sfu.media import OPUS, EncodedFrame
    from tests.integration.media.peers import AudioStreamTrack, publish

    router = Router("RM-audio")
    pub_pc, _, producers = await publish(router, "PA", [(AudioStreamTrack(), "audio/opus")])
    speaker: list[EncodedFrame] = []
    router.consume_local(producers[0], speaker.append)
    mic = router.produce_local("PK", OPUS)
    sub = Subscriber(router, "PB")
    router.consume(mic, sub.transport)
    await sub.negotiate()
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = fractions.Fraction(1, 48000)
    try:
        t0 = 0
        for _ in range(100):  # 2 s of 20 ms packets, paced
            tone = (np.sin(np.arange(t0, t0 + 960) / 10) * 3000).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(
                np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo"
            )
            frame.sample_rate, frame.pts = 48000, t0
            for packet in encoder.encode(frame):
                mic.push(EncodedFrame(bytes(packet), True, t0 * 1_000_000 // 48000))
            t0 += 960
            await asyncio.sleep(0.02)
            if sub.audio_frames >= 20 and len(speaker) >= 20:
                break
        await wait_for(lambda: sub.audio_frames >= 20, what="mic audio at the peer")
        await wait_for(lambda: len(speaker) >= 20, what="peer audio at the speaker")
        decoder = av.CodecContext.create("opus", "r")
        samples = sum(f.samples for p in speaker for f in decoder.decode(av.Packet(p.data)))
        assert samples == 960 * len(speaker)  # every packet a valid 20 ms Opus frame
        stamps = [f.timestamp_us for f in speaker]
        assert stamps[0] == 0 and all(b - a == 20_000 for a, b in itertools.pairwise(stamps))
    finally:
        await sub.close()
        await pub_pc.close()
        await router.close()
