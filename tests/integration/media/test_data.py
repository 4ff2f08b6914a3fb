"""Data tracks: forwarded per publication, reliable or lossy, with a size limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import RTCSessionDescription

from edge_sfu.media import DataMessageTooLarge, MediaSettings, Router
from tests.integration.media.peers import Subscriber, new_pc
from tests.support.waiting import wait_for


async def test_data_tracks_forwarded_with_size_limit() -> None:
    router = Router("RM-data", MediaSettings(max_data_message_bytes=1000))
    pub_pc = new_pc()
    pub_t = router.create_transport("PA")
    producers: dict[str, Any] = {}
    errors: list[DataMessageTooLarge] = []
    # As in production: the SFU opens a negotiated channel per data track and offers; once
    # SCTP is up the publisher sends on its side of each, opened on the SFU's stream id.
    sfu_side = {
        label: pub_t.create_data_channel(label, ordered=ordered, max_retransmits=retransmits)
        for label, ordered, retransmits in (("chat", True, None), ("cursor", False, 0))
    }
    offer = await pub_t.create_offer()
    await pub_pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    await pub_pc.setLocalDescription(await pub_pc.createAnswer())
    await pub_t.handle_answer(pub_pc.localDescription.sdp)
    await wait_for(
        lambda: all(c.readyState == "open" for c in sfu_side.values()), what="SFU channels"
    )
    for label, channel in sfu_side.items():
        producer = router.produce_data("PA", label=label, channel=channel)
        producer.on_error = errors.append
        producers[label] = producer
    reliable = pub_pc.createDataChannel("chat", negotiated=True, id=sfu_side["chat"].id)
    lossy = pub_pc.createDataChannel(
        "cursor", negotiated=True, id=sfu_side["cursor"].id, ordered=False, maxRetransmits=0
    )
    await wait_for(lambda: len(producers) == 2, what="data producers")
    await wait_for(
        lambda: reliable.readyState == "open" and lossy.readyState == "open",
        what="publisher channels",
    )
    assert producers["chat"].ordered and producers["chat"].max_retransmits is None
    assert not producers["cursor"].ordered and producers["cursor"].max_retransmits == 0

    sub = Subscriber(router, "PB")
    received: dict[str, list[Any]] = {"chat": [], "cursor": []}
    channels: dict[str, Any] = {}

    local: list[Any] = []
    try:
        for producer in producers.values():
            consumer = router.consume_data(producer, sub.transport)
            assert consumer.channel is not None and consumer.channel.negotiated
            # the subscriber opens its side on the stream id the SFU chose (signaling's job)
            channel = sub.pc.createDataChannel(
                producer.label,
                negotiated=True,
                id=consumer.channel.id,
                ordered=producer.ordered,
                maxRetransmits=producer.max_retransmits,
            )
            channel.on("message", received[producer.label].append)
            channels[producer.label] = channel
        assert channels["chat"].id != channels["cursor"].id
        local_consumer = router.consume_data(producers["chat"], on_message=local.append)
        await sub.negotiate()
        await wait_for(
            lambda: all(c.readyState == "open" for c in channels.values()),
            what="subscriber channels",
        )
        await wait_for(
            lambda: all(
                c.channel is not None and c.channel.readyState == "open"
                for p in producers.values()
                for c in p._consumers
                if c.channel is not None
            ),
            what="SFU-side channels open",
        )
        assert channels["cursor"].ordered is False and channels["cursor"].maxRetransmits == 0
        for i in range(5):
            reliable.send(f"hello {i}")
            lossy.send(b"xy" * 10)
        reliable.send("x" * 1001)  # over the limit: refused, reported, not forwarded
        reliable.send("after")
        await wait_for(lambda: len(received["chat"]) >= 6, what="chat messages")
        assert received["chat"] == [f"hello {i}" for i in range(5)] + ["after"]
        await wait_for(lambda: len(received["cursor"]) >= 5, what="cursor messages")
        assert received["cursor"] == [b"xy" * 10] * 5
        assert len(errors) == 1 and errors[0].size == 1001 and errors[0].limit == 1000
        assert local == received["chat"]
        # local code publishing a data track gets the error raised at once
        local_track = router.produce_data("PK", label="kiosk")
        with pytest.raises(DataMessageTooLarge):
            local_track.send(b"z" * 1001)
        local_consumer.close()
        reliable.send("no longer local")
        await wait_for(lambda: len(received["chat"]) >= 7, what="one more")
        await asyncio.sleep(0.05)
        assert local[-1] == "after"
    finally:
        await sub.close()
        await pub_pc.close()
        await router.close()
