"""What a publisher's uplink is asked for, for its network quality: what its subscribers
take of it, not a fixed camera's bitrate (a publisher the SFU holds back is not poor)."""

from __future__ import annotations

from edge_sfu.media import H264, OPUS, LayerSpec, Router
from edge_sfu.media.quality import WANTED_BPS, LinkSample, network_quality
from edge_sfu.signaling.signals import wanted_uplink

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
