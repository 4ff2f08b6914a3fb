"""``send-layers``: a simulcast publisher hears which layers to send when that changes, and
again after it reconnects; ``sending-layers``: what it says it sends pauses the others."""

from __future__ import annotations

from typing import Any

import pytest

from edge_sfu.media import H264, LayerSpec, Router
from edge_sfu.signaling import protocol as p
from edge_sfu.signaling.media_bridge import MediaBridge


async def _no_publish(request: Any) -> Any:
    raise AssertionError("not used")


async def test_send_layers_when_they_change_and_after_a_reconnect() -> None:
    router = Router("RM1")
    sent: list[dict[str, Any]] = []
    bridge = MediaBridge(router, "PA1", sent.append, _no_publish)
    producer = router.produce_local(
        "PA1", H264, layers=[LayerSpec("q", 160, 120), LayerSpec("h", 320, 240)]
    )
    try:
        bridge._send_layers("MT1", producer, frozenset())
        bridge._send_layers("MT1", producer, frozenset({"h"}))
        bridge._send_layers("MT1", producer, frozenset({"q", "h"}))  # same rids to send
        bridge._send_layers("MT1", producer, frozenset({"q"}))
        assert [m["rids"] for m in sent] == [[], ["q", "h"], ["q"]]
        assert all(
            m == {"type": "send-layers", "track_sid": "MT1", "rids": m["rids"]} for m in sent
        )
        sent.clear()
        bridge.resend_outstanding()
        assert sent == [{"type": "send-layers", "track_sid": "MT1", "rids": ["q"]}]
        producer.close()
        bridge._send_layers("MT1", producer, frozenset({"h"}))
        sent.clear()
        bridge.resend_outstanding()
        assert sent == []
    finally:
        await bridge.close()
        await router.close()


async def test_sending_layers_pause_the_others_for_the_subscribers() -> None:
    router = Router("RM1")
    bridge = MediaBridge(router, "PA1", lambda message: None, _no_publish)
    producer = router.produce_local(
        "PA1", H264, layers=[LayerSpec("q", 160, 120), LayerSpec("h", 320, 240)]
    )
    single = router.produce_local("PA1", H264)
    bridge.producers["MT1"] = producer
    bridge.producers["MT2"] = single
    try:
        bridge.set_sending_layers("MT1", ["q"])
        assert producer.paused_layers == {"h"}
        bridge.set_sending_layers("MT1", ["q", "h"])
        assert producer.paused_layers == frozenset()
        with pytest.raises(p.ProtocolError, match="no layer 'f'") as refused:
            bridge.set_sending_layers("MT1", ["q", "f"])
        assert refused.value.code == p.TRACK_INVALID
        assert producer.paused_layers == frozenset()
        with pytest.raises(p.ProtocolError, match="not simulcast"):
            bridge.set_sending_layers("MT2", [])
        bridge.set_sending_layers("MT9", ["q"])  # not produced (yet): nothing to move
    finally:
        await bridge.close()
        await router.close()
