"""Allocations applied to consumers: a cap on the render-size choice, switch-off and on,
wanted layers following allocations, and the cap a single-layer publisher is told."""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge_sfu.media.allocation import (
    MIN_PUBLISHER_CAP_BPS,
    SubscriberAllocation,
    layer_options,
    measured_bitrate,
    publisher_cap,
)
from edge_sfu.media.allocator import (
    REASON_HOLD,
    REASON_NETWORK,
    Allocation,
    VideoBandwidthProfile,
    default_video_bitrate,
)
from edge_sfu.media.consumer import Consumer
from edge_sfu.media.layers import LayerSpec
from edge_sfu.media.packet import OPUS, MediaPacket
from edge_sfu.media.producer import Producer
from tests.unit.edge_sfu.media.test_consumer import feed, frame, make

SIMULCAST = [LayerSpec("q", 320, 180), LayerSpec("h", 640, 360), LayerSpec("f", 1280, 720)]


def test_allowed_layer_caps_the_render_size_choice_and_switches_on_a_keyframe() -> None:
    producer, consumer, path, up = make(SIMULCAST)
    assert consumer.target_layer == "f" and consumer.preferred_layer == "f"
    feed(producer, frame("f", 100, 0, 2, True, 0.0))
    assert consumer.current_layer == "f"
    up.keyframes.clear()
    consumer.set_allowed_layer("h", switched_off=False, reason=REASON_NETWORK)
    assert consumer.target_layer == "h" and up.keyframes == ["h"]
    assert producer.wanted_layers == {"f", "h"}  # f until h's keyframe
    feed(producer, frame("f", 102, 3000, 2, False, 0.033))
    feed(producer, frame("h", 500, 3000, 2, True, 0.033))
    assert consumer.current_layer == "h" and producer.wanted_layers == {"h"}
    # the cap is a ceiling: a smaller render size still picks a smaller layer
    consumer.set_preferred_size(320, 180)
    assert consumer.target_layer == "q"
    consumer.set_allowed_layer(None, switched_off=False)
    assert consumer.target_layer == "q"
    consumer.set_preferred_size(None, None)
    assert consumer.target_layer == "f"
    assert len(path.rtp) == 6


def test_switch_off_forwards_nothing_and_switch_on_waits_for_a_keyframe() -> None:
    producer, consumer, path, up = make(SIMULCAST)
    switches: list[tuple[bool, str]] = []
    consumer.on_switched = lambda off, why: switches.append((off, why))
    feed(producer, frame("f", 100, 0, 2, True, 0.0))
    sent = len(path.rtp)
    consumer.set_allowed_layer(None, switched_off=True, reason=REASON_NETWORK)
    assert consumer.switched_off and consumer.current_layer is None
    assert producer.wanted_layers == frozenset()  # nobody wants any layer now
    feed(producer, frame("f", 102, 3000, 2, True, 0.033))
    assert len(path.rtp) == sent
    consumer.set_allowed_layer(None, switched_off=True, reason=REASON_NETWORK)
    assert switches == [(True, REASON_NETWORK)]  # told once
    up.keyframes.clear()
    consumer.set_allowed_layer("q", switched_off=False, reason="render-size")
    assert switches[-1] == (False, "render-size") and up.keyframes == ["q"]
    feed(producer, frame("q", 7, 3000, 2, False, 0.06))
    assert len(path.rtp) == sent  # no keyframe yet
    feed(producer, frame("q", 9, 6000, 2, True, 0.09))
    assert consumer.current_layer == "q" and len(path.rtp) == sent + 2
    # sequence numbers go on from where they stopped
    assert path.rtp[sent][2] == (path.rtp[sent - 1][2] + 1) & 0xFFFF


@dataclass
class Estimate:
    available_outgoing_bps: int | None


def test_allocation_pass_switches_the_lower_priority_track_off_and_back_on() -> None:
    now = [0.0]
    estimate: list[int | None] = [20_000_000]  # a first figure, then a drop: it binds
    cam_p, cam, _, _ = make(SIMULCAST)
    screen_p, screen, _, _ = make(SIMULCAST)
    screen_p.priority = "high"
    audio_p = Producer(producer_id="MTa", participant_id="PA", codec=OPUS)
    mic = Consumer(audio_p, "COa", lambda: None)
    consumers = [cam, screen, mic]
    # both producers are "MT1" in make(): give the consumers distinct ids
    cam.id, screen.id = "COcam", "COscreen"
    alloc = SubscriberAllocation(lambda: consumers, lambda: estimate[0], clock=lambda: now[0])
    alloc.profile = VideoBandwidthProfile(mode="presentation")
    alloc.run()
    assert not cam.switched_off and not screen.switched_off
    estimate[0] = 1_600_000  # the screen's top layer (1.5 Mbps by default) and no more
    now[0] = 1.0
    alloc.run()
    assert cam.switched_off and cam.switch_reason == REASON_NETWORK
    assert screen.target_layer == "f"
    assert [s.switched_off for s in alloc.status()] == [True, False, False]
    estimate[0] = None
    now[0] = 2.0
    alloc.run()
    assert cam.switched_off  # held: the estimate has not covered it for the hold time yet
    now[0] = 3.5  # the 1.6 Mbps of t=1 was in force until t=2: still in the window
    alloc.run()
    assert cam.switched_off
    now[0] = 4.1
    alloc.run()
    assert not cam.switched_off and cam.target_layer == "f"
    # the subscriber lowers the screen's priority: the camera goes first now
    alloc.set_priority("COscreen", "low")
    estimate[0] = 1_600_000
    now[0] = 5.0
    alloc.run()
    assert screen.switched_off and not cam.switched_off
    assert cam_p.wanted_layers == {"f"} and screen_p.wanted_layers == frozenset()


def test_publisher_cap_is_the_most_one_subscriber_can_take_of_single_layer_tracks() -> None:
    single, c1, _, _ = make([LayerSpec("default")])
    second = Consumer(single, "CO2", lambda: None)

    def on(cost: int, share: int | None) -> Allocation:
        return Allocation("default", False, "render-size", cost, share)

    def off(share: int | None) -> Allocation:
        return Allocation(None, True, REASON_NETWORK, 0, share)

    # one subscriber takes it at 300 kbps with 500 to spare, the other has 400 kbps, off
    assert (
        publisher_cap([single], {"MT1": [("s1", on(300_000, 800_000)), ("s2", off(400_000))]})
        == 800_000
    )
    assert publisher_cap([single], {"MT1": [("s1", on(1, 300_000)), ("s2", on(1, None))]}) is None
    assert publisher_cap([single], {"MT1": [("s1", on(1, 300_000))]}) is None  # one not allocated
    assert (
        publisher_cap([single], {"MT1": [("s1", off(0)), ("s2", off(0))]}) == MIN_PUBLISHER_CAP_BPS
    )
    # two tracks to one subscriber: what it has left is counted once
    other, c3, _, _ = make([LayerSpec("default")])
    other.id = "MT3"
    both = {
        "MT1": [("s1", on(300_000, 500_000)), ("s2", off(50_000))],
        "MT3": [("s1", on(400_000, 600_000))],
    }
    assert publisher_cap([single, other], both) == 300_000 + 400_000 + 200_000
    simulcast, _, _, _ = make(SIMULCAST)
    assert publisher_cap([single, simulcast], {"MT1": [("s1", off(1)), ("s2", off(1))]}) is None
    assert publisher_cap([], {}) is None
    second.close()
    c1.close()
    c3.close()
    assert publisher_cap([single], {"MT1": [("s1", off(5))]}) is None  # no subscriber now


def test_a_single_layer_producer_is_measured_and_its_cost_follows() -> None:
    producer, _consumer, _path, _up = make([LayerSpec("default")])
    assert measured_bitrate(producer, 0.0) is None  # one sample is no rate
    assert layer_options(producer, 0.0)[0].cost == default_video_bitrate(0, 0)
    t = 0.0
    for i in range(40):  # 10 packets/s of 1000 payload bytes: 84 kbit/s on the wire
        t = i * 0.1
        feed(producer, [MediaPacket(b"x" * 1000, i, 0, 1, False, "default", t)])
        layer_options(producer, t)  # the allocation passes sample it
    rate = measured_bitrate(producer, t)
    assert rate is not None and 0.9 * 84_000 < rate < 1.1 * 84_000
    assert layer_options(producer, t)[0].cost == rate
    # layers of a simulcast producer keep their per-size defaults (no per-layer figure)
    simulcast, _, _, _ = make(SIMULCAST)
    assert [o.cost for o in layer_options(simulcast, t)] == [
        default_video_bitrate(320, 180),
        default_video_bitrate(640, 360),
        default_video_bitrate(1280, 720),
    ]


def test_probe_target_is_the_next_step_the_estimate_holds_back() -> None:
    now = [0.0]
    estimate: list[int | None] = [20_000_000]
    _p1, cam, _, _ = make(SIMULCAST)
    _p2, other, _, _ = make(SIMULCAST)
    cam.id, other.id = "COcam", "COother"
    alloc = SubscriberAllocation(lambda: [cam, other], lambda: estimate[0], clock=lambda: now[0])
    alloc.run()
    assert alloc.probe_target() is None  # nothing held back
    estimate[0] = 700_000  # both on q (150 kbps each), one on h (500 kbps): 650 kbps
    now[0] = 1.0
    result = alloc.run()
    assert sorted(a.layer or "" for a in result.values()) == ["h", "q"]
    # the cheapest step held back: q -> h (350 kbps more), on top of the 650 kbps allocated
    assert alloc.probe_target() == int((650_000 + 350_000) / alloc.allocator.up_headroom)
    cam.set_preferred_size(320, 180)  # a render size that wants q only is not held back
    other.set_preferred_size(320, 180)
    now[0] = 2.0
    alloc.run()
    assert alloc.probe_target() is None


def test_probe_target_covers_the_mix_the_estimate_allows_when_the_hold_keeps_another() -> None:
    # Both cameras on h (700 kbps). The estimate rises to 1.65 Mbps, which allows the
    # high-priority one its f with the other down to q (1.6 Mbps); the hold takes that only
    # once an estimate over it with the headroom held. The cheapest step (the other's h -> f,
    # 100 kbps) fits already, so a probe for it alone would never start: both stayed on h
    # for as long as the estimate did not grow by itself.
    now = [0.0]
    estimate: list[int | None] = [20_000_000]
    small = [
        LayerSpec("q", 320, 180, bitrate=100_000),
        LayerSpec("h", 640, 360, bitrate=200_000),
        LayerSpec("f", 1280, 720, bitrate=300_000),
    ]
    big = [
        LayerSpec("q", 320, 180, bitrate=150_000),
        LayerSpec("h", 640, 360, bitrate=500_000),
        LayerSpec("f", 1280, 720, bitrate=1_500_000),
    ]
    _p1, cam, _, _ = make(small)
    p2, other, _, _ = make(big)
    p2.priority = "high"
    cam.id, other.id = "COcam", "COother"
    alloc = SubscriberAllocation(
        lambda: [cam, other],
        lambda: estimate[0],
        loss=lambda: 0.3,
        overused=lambda: True,
        clock=lambda: now[0],
    )
    alloc.run()
    for t in range(1, 5):
        estimate[0], now[0] = 700_000, float(t)
        alloc.run()
    assert alloc.congested and (cam.target_layer, other.target_layer) == ("h", "h")
    for t in range(5, 12):
        estimate[0], now[0] = 1_650_000, float(t)
        result = alloc.run()
    assert (cam.target_layer, other.target_layer) == ("h", "h")
    assert result["COother"].reason == REASON_HOLD
    assert alloc.allocator.unheld_bps == 1_600_000
    target = alloc.probe_target()
    assert target is not None and target > 1_650_000
    assert target == int(1_600_000 / alloc.allocator.up_headroom) + 1


def test_a_bound_estimate_steps_up_only_as_far_as_probes_proved() -> None:
    # Behind a capped link the estimate floats over what gets through; a step up to it
    # waits for a probe's proof, and the pass says when it stepped a track down (the
    # transport then waits before it probes into a link just found short).
    now = [0.0]
    estimate: list[int | None] = [None]
    proven: list[int | None] = [0]
    _p, cam, _, _ = make(SIMULCAST)
    alloc = SubscriberAllocation(
        lambda: [cam], lambda: estimate[0], clock=lambda: now[0], proven_bps=lambda: proven[0]
    )
    estimate[0] = 2_000_000
    alloc.run()
    assert cam.target_layer == "f" and not alloc.stepped_down
    estimate[0], now[0] = 200_000, 1.0
    alloc.run()  # congestion (a drop, loss not known): the estimate binds, down to q
    assert alloc.congested and cam.target_layer == "q" and alloc.stepped_down
    for t in range(2, 12):
        estimate[0], now[0] = 2_000_000, float(t)
        result = alloc.run()
        assert cam.target_layer == "q" and result[cam.id].reason == REASON_HOLD
        assert not alloc.stepped_down
    proven[0] = 700_000  # a probe showed 700 kbit/s: h (500 kbps) fits, f does not
    now[0] = 12.0
    alloc.run()
    assert cam.target_layer == "h"
    proven[0] = None  # one that cannot be probed steps up on the held estimate
    now[0] = 13.0
    alloc.run()
    assert cam.target_layer == "f"


def test_the_estimate_binds_once_it_came_down() -> None:
    now = [0.0]
    estimate: list[int | None] = [None]
    _p, cam, _, _ = make(SIMULCAST)
    alloc = SubscriberAllocation(lambda: [cam], lambda: estimate[0], clock=lambda: now[0])
    # the estimator's starting guess, ramping up: nothing is limited by it
    for i, bps in enumerate((None, 300_000, 320_000, 345_000, 340_000)):
        estimate[0], now[0] = bps, float(i)
        alloc.run()
        assert not alloc.congested and cam.target_layer == "f"
        assert alloc.last_available_bps is None
    estimate[0], now[0] = 300_000, 5.0  # down by more than 5 %: congestion
    alloc.run()
    assert alloc.congested and alloc.last_available_bps == 300_000
    assert cam.target_layer == "q"
    estimate[0], now[0] = 5_000_000, 6.0  # from now on it binds either way
    alloc.run()
    assert alloc.last_available_bps == 5_000_000


def test_an_estimate_that_held_nothing_back_for_a_while_stops_binding() -> None:
    now = [0.0]
    estimate: list[int | None] = [2_000_000]
    loss: list[float | None] = [0.3]
    _p, cam, _, _ = make(SIMULCAST)
    alloc = SubscriberAllocation(
        lambda: [cam], lambda: estimate[0], loss=lambda: loss[0], clock=lambda: now[0]
    )
    alloc.run()
    for t, bps in ((1.0, 1_500_000), (2.0, 300_000)):  # a short link
        estimate[0], now[0] = bps, t
        alloc.run()
    assert alloc.congested and cam.target_layer == "q"
    # the link recovers: the estimate climbs and holds the top layer, nothing is lost
    loss[0] = 0.0
    for t in range(3, 8):
        estimate[0], now[0] = 5_000_000, float(t)
        alloc.run()
    assert alloc.congested and alloc.probe_target() is None  # not yet
    # a delay spike on a busy host while still binding switches down ...
    estimate[0], now[0] = 200_000, 8.0
    alloc.run()
    assert alloc.congested and cam.target_layer == "q"
    for t in range(9, 18):  # stepping up takes 2 s of the 9
        estimate[0], now[0] = 5_000_000, float(t)
        alloc.run()
    # ... but after 5 s of holding nothing back without loss it binds no more
    assert not alloc.congested and alloc.last_available_bps is None
    estimate[0], now[0] = 200_000, 18.0  # a spike without loss now changes nothing
    alloc.run()
    assert not alloc.congested and cam.target_layer == "f"


def test_a_drop_without_loss_does_not_bind() -> None:
    now = [0.0]
    estimate: list[int | None] = [1_000_000]
    loss: list[float | None] = [0.0]
    _p, cam, _, _ = make(SIMULCAST)
    alloc = SubscriberAllocation(
        lambda: [cam], lambda: estimate[0], loss=lambda: loss[0], clock=lambda: now[0]
    )
    alloc.run()
    estimate[0], now[0] = 60_000, 1.0  # a busy host delays packets: nothing is lost
    alloc.run()
    assert not alloc.congested and not cam.switched_off
    estimate[0], loss[0], now[0] = 55_000, 0.3, 2.0  # a short link loses what it cannot carry
    alloc.run()
    assert not alloc.congested  # ... and goes on losing it
    estimate[0], now[0] = 50_000, 3.0
    alloc.run()
    assert alloc.congested and cam.switched_off


def test_a_moment_of_loss_as_streams_start_does_not_bind() -> None:
    now = [0.0]
    estimate: list[int | None] = [1_000_000]
    loss: list[float | None] = [0.0]
    _p, cam, _, _ = make(SIMULCAST)
    alloc = SubscriberAllocation(
        lambda: [cam], lambda: estimate[0], loss=lambda: loss[0], clock=lambda: now[0]
    )
    alloc.run()
    # a receiver's socket overflows for a moment: a fifth lost, the estimate cut
    for t, bps, lost in ((0.3, 900_000, 0.2), (0.6, 700_000, 0.2), (1.1, 680_000, 0.0)):
        estimate[0], loss[0], now[0] = bps, lost, t
        alloc.run()
        assert not alloc.congested and alloc.last_available_bps is None
    # later the loss lasts: the drop from the peak since it began (690 kbps) binds
    for t, bps in ((5.0, 690_000), (5.6, 650_000), (6.1, 600_000)):
        estimate[0], loss[0], now[0] = bps, 0.1, t
        alloc.run()
    assert alloc.congested and alloc.last_available_bps == 600_000


@dataclass
class Seen:
    """What the allocation reads of the link and the clock (the test changes it)."""

    estimate: int
    loss: float = 0.0
    overused: bool = False
    now: float = 0.0


def _watching(seen: Seen) -> tuple[SubscriberAllocation, Consumer]:
    """An allocation over one simulcast consumer that reads ``seen``."""
    _p, cam, _, _ = make(SIMULCAST)
    alloc = SubscriberAllocation(
        lambda: [cam],
        lambda: seen.estimate,
        loss=lambda: seen.loss,
        overused=lambda: seen.overused,
        clock=lambda: seen.now,
    )
    alloc.run()
    return alloc, cam


def test_loss_while_a_queue_builds_up_binds_at_once() -> None:
    seen = Seen(1_000_000)
    alloc, _cam = _watching(seen)
    seen.estimate, seen.loss, seen.now = 800_000, 0.2, 0.2
    alloc.run()
    assert not alloc.congested  # a moment's loss alone is not congestion
    seen.estimate, seen.overused, seen.now = 300_000, True, 0.4
    alloc.run()
    assert alloc.congested and alloc.last_available_bps == 300_000


def test_an_overuse_cut_before_the_loss_shows_binds_once_it_does() -> None:
    # A subscriber's link is capped under what it gets: the queue's delay cuts the estimate
    # first, with nothing lost yet; the loss shows a feedback later. The drop is from the
    # estimate before the cut, not from the cut one (the link's feedback then starved in
    # its flooded directions, and it was never stepped down).
    seen = Seen(736_000)
    alloc, cam = _watching(seen)
    seen.estimate, seen.overused, seen.now = 338_000, True, 1.27
    alloc.run()
    assert not alloc.congested  # a delay spike alone is not congestion
    seen.loss, seen.now = 0.35, 1.69
    alloc.run()
    assert alloc.congested and alloc.last_available_bps == 338_000
    assert cam.target_layer == "q"


def test_loss_from_a_failed_probe_leaves_switching_off_its_leeway() -> None:
    # A capped subscriber on its lowest layer; a probe for the step up overflows the link,
    # a fifth of the packets are lost, and the estimate dips under that layer's cost. Loss
    # takes the leeway away (the camera goes off), unless it is the probe's own overshoot.
    def dip(probe_overshoot: bool) -> Consumer:
        seen = Seen(1_000_000)
        producer, cam, _, _ = make(SIMULCAST)
        lowest = min(o.cost for o in layer_options(producer))
        alloc = SubscriberAllocation(
            lambda: [cam],
            lambda: seen.estimate,
            loss=lambda: seen.loss,
            overused=lambda: seen.overused,
            probe_overshoot=lambda: probe_overshoot,
            clock=lambda: seen.now,
        )
        alloc.run()
        for t in (1.0, 2.0, 3.0, 4.0):  # congested, on the lowest layer
            seen.estimate, seen.loss, seen.overused, seen.now = int(1.2 * lowest), 0.2, True, t
            alloc.run()
        assert alloc.congested and cam.target_layer == "q" and not cam.switched_off
        seen.estimate, seen.loss, seen.now = int(0.85 * lowest), 0.2, 4.5
        alloc.run()
        return cam

    assert dip(probe_overshoot=False).switched_off
    kept = dip(probe_overshoot=True)
    assert not kept.switched_off and kept.target_layer == "q"


def test_a_paused_layer_costs_what_it_sent_while_it_flowed() -> None:
    producer, _cam, _, _ = make(SIMULCAST)
    t = 100.0
    for i in range(150):  # h flows at about 240 kbit/s for 1.5 s, then pauses
        producer.layers["h"].count(300, t + i * 0.01)
    costs = {o.name: o.cost for o in layer_options(producer)}
    assert producer.layers["h"].bitrate_bps == 0
    assert 200_000 <= costs["h"] <= 280_000
    assert costs["f"] == default_video_bitrate(1280, 720)  # never flowed: by its size


def test_a_paused_layer_costs_at_least_what_its_publisher_declared() -> None:
    # A browser's top layer that nobody took since the call began flowed only while its
    # encoder ramped up: resuming it costs what the publisher declared, not that.
    layers = [LayerSpec("h", 320, 240, bitrate=80_000), LayerSpec("f", 640, 480, bitrate=900_000)]
    producer, _cam, _, _ = make(layers)
    t = 100.0
    for i in range(150):  # f flows at about 240 kbit/s for 1.5 s, then pauses
        producer.layers["f"].count(300, t + i * 0.01)
    assert producer.layers["f"].bitrate_bps == 0
    assert {o.name: o.cost for o in layer_options(producer)}["f"] == 900_000
    # flowing (and measured above what it declared) it costs what it sends
    t = time.monotonic()
    for i in range(150):
        producer.layers["f"].count(2_000, t - 1.49 + i * 0.01)
    assert {o.name: o.cost for o in layer_options(producer)}["f"] > 900_000
