"""What a participant's link is asked for, for its network quality: of a publisher's uplink
what its subscribers take of it, not a fixed camera's bitrate (a publisher the SFU holds back
is not poor), and how much of it does not arrive; of a subscriber's downlink the layers its
render sizes prefer."""

from __future__ import annotations

import asyncio

from edge_sfu.media import H264, OPUS, EncodedFrame, LayerSpec, LocalProducer, Router
from edge_sfu.media.quality import WANTED_BPS, LinkSample, network_quality
from edge_sfu.signaling.signals import uplink_shortfall, wanted_downlink, wanted_uplink

#: A browser's camera in two simulcast layers; not measured yet, each costs the allocator's
#: default for its size (150 and 500 kbit/s).
LAYERS = [LayerSpec("q", 320, 180), LayerSpec("h", 640, 360)]


async def test_a_simulcast_publisher_is_asked_for_the_layers_its_subscribers_take() -> None:
    router = Router("RM1")
    try:
        mic = router.produce_local("PA1", OPUS)
        camera = router.produce_local("PA1", H264, layers=LAYERS)
        # nobody subscribes: the camera is told to send nothing, so nothing is asked of it
        assert wanted_uplink([mic, camera], None) == {"audio": 32_000, "video": 0}
        consumer = router.consume_local(camera, lambda frame: None)
        consumer.set_preferred_size(640, 360)  # rendered large: both layers, at most 400k
        assert wanted_uplink([mic, camera], None) == {"audio": 32_000, "video": 400_000}
        consumer.set_preferred_size(160, 90)  # rendered small: the lowest layer only
        assert camera.wanted_layers == {"q"}
        assert wanted_uplink([mic, camera], None)["video"] == 150_000
        consumer.set_allowed_layer(None, switched_off=True)  # switched off: nothing
        assert wanted_uplink([mic, camera], None)["video"] == 0
    finally:
        await router.close()


async def test_single_layer_video_is_asked_for_at_most_the_publisher_cap() -> None:
    router = Router("RM1")
    try:
        mic = router.produce_local("PA1", OPUS)
        camera = router.produce_local("PA1", H264)
        assert wanted_uplink([mic, camera], None) == WANTED_BPS
        assert wanted_uplink([mic, camera], 100_000) == {"audio": 32_000, "video": 100_000}
        assert wanted_uplink([mic, camera], 2_000_000) == WANTED_BPS
        assert wanted_uplink([mic], 100_000) == {"audio": 32_000}
    finally:
        await router.close()


async def test_a_capped_publisher_on_a_good_link_is_excellent() -> None:
    # What arrives from a publisher the SFU capped at 100 kbit/s (its subscribers switched
    # its video off), on loopback: judged against the fixed 432 kbit/s it read 2.
    router = Router("RM1")
    try:
        mic = router.produce_local("PA1", OPUS)
        camera = router.produce_local("PA1", H264)
        arrives = 125_000
        send = {
            kind: LinkSample(bps, None, arrives, 0.0, 0.002, 0.01)
            for kind, bps in wanted_uplink([mic, camera], 100_000).items()
        }
        assert network_quality(send, {}).level == 5
        old = {k: LinkSample(b, None, arrives, 0.0, 0.002, 0.01) for k, b in WANTED_BPS.items()}
        assert network_quality(old, {}).level == 2
    finally:
        await router.close()


def _send(camera: LocalProducer, layer: str, size: int) -> None:
    # one keyframe of about ``size`` payload bytes on ``layer``: its bitrate over a half-second
    # period is then about 16 bits per byte
    camera.push(EncodedFrame(b"\x00\x00\x00\x01\x65" + bytes(size), True, 0, layer))


async def test_what_a_simulcast_publisher_stopped_sending_of_what_it_is_asked() -> None:
    router = Router("RM1")
    try:
        camera = router.produce_local("PA1", H264, layers=LAYERS)
        assert uplink_shortfall([camera]) == 0  # asked for nothing
        consumer = router.consume_local(camera, lambda frame: None)
        consumer.set_preferred_size(640, 360)  # asked for both layers
        assert uplink_shortfall([camera]) == 0  # neither ever flowed: not counted
        _send(camera, "h", 25_000)  # about 400 kbit/s on the big layer...
        await asyncio.sleep(0.6)
        _send(camera, "h", 10)  # ... measured over a whole period
        _send(camera, "q", 6_250)  # and about 100 kbit/s on the small one
        assert uplink_shortfall([camera]) == 0  # both flow
        await asyncio.sleep(1.1)  # the big layer stopped (its own estimate dropped it)
        _send(camera, "q", 6_250)
        short = uplink_shortfall([camera])
        assert 280_000 < short < 320_000, short  # 400 kbit/s asked, about 100 arrive
    finally:
        await router.close()


async def test_a_subscription_asks_for_the_best_layer_sent_or_the_one_it_prefers() -> None:
    router = Router("RM1")
    try:
        mic = router.produce_local("PA1", OPUS)
        camera = router.produce_local("PA1", H264, layers=LAYERS)
        assert wanted_downlink(mic, None) == WANTED_BPS["audio"]
        floor = WANTED_BPS["video"] // 4
        assert wanted_downlink(camera, None) == floor  # nothing sent yet
        _send(camera, "h", 25_000)  # about 400 kbit/s
        _send(camera, "q", 9_375)  # about 150 kbit/s
        assert 380_000 < wanted_downlink(camera, None) < 420_000
        assert 380_000 < wanted_downlink(camera, "h") < 420_000  # a big tile
        assert 140_000 < wanted_downlink(camera, "q") < 160_000  # a small tile
    finally:
        await router.close()
