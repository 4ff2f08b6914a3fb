"""The selective forwarding engine: encoded media from producers to consumers, no transcoding.

Start at ``Router`` (one per room). See ``docs/media.md``.

Conventions every class here follows:

* Lifetime: routers, transports, producers, consumers and data tracks are
  ``edge_common.lifecycle`` closeables. ``close()`` closes once and cascades to children;
  ``on_close(callback)`` is how anyone (several parties may) hears of it. A child closed
  because its parent closes does not call that parent back.
* Events: one attribute per event, ``on_<event>: Callable | None``, set by the one owner
  that handles it (``transport.on_negotiation_needed = ...``). Where data flows out (a
  local consumer's frames, upstream keyframe requests) the function is a constructor
  argument instead, because the object cannot work without it.
* Internal API: methods one engine class calls on another (``Producer.attach_consumer``,
  ``ConsumerBase.deliver``, ``IncomingTrack.handle_rtp``...) have public names and say
  "Engine-internal" in their docstring: code outside ``edge_sfu.media`` does not call them.

The names below load their submodule on first use (PEP 562): most of them import aiortc and
PyAV, which the appliance loads on the first WebRTC session or join press, not at start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_sfu.media.consumer import Consumer
    from edge_sfu.media.consumer_base import ConsumerBase
    from edge_sfu.media.data import DataConsumer, DataProducer
    from edge_sfu.media.errors import DataMessageTooLarge, MediaClosed, MediaError, UnsupportedCodec
    from edge_sfu.media.incoming import IncomingTrack
    from edge_sfu.media.layers import DEFAULT_LAYER, LayerSpec, choose_layer, sending_layers
    from edge_sfu.media.local import EncodedFrame, LocalConsumer, LocalProducer
    from edge_sfu.media.packet import H264, OPUS, VP8, CodecInfo
    from edge_sfu.media.producer import Producer
    from edge_sfu.media.router import Router
    from edge_sfu.media.settings import IceServer, MediaSettings
    from edge_sfu.media.slots import PublicationSlot
    from edge_sfu.media.transport import DataChannel, Transport

_SUBMODULE = {
    "Consumer": "consumer",
    "ConsumerBase": "consumer_base",
    "DataConsumer": "data",
    "DataProducer": "data",
    "DataMessageTooLarge": "errors",
    "MediaClosed": "errors",
    "MediaError": "errors",
    "UnsupportedCodec": "errors",
    "IncomingTrack": "incoming",
    "DEFAULT_LAYER": "layers",
    "LayerSpec": "layers",
    "choose_layer": "layers",
    "sending_layers": "layers",
    "EncodedFrame": "local",
    "LocalConsumer": "local",
    "LocalProducer": "local",
    "H264": "packet",
    "OPUS": "packet",
    "VP8": "packet",
    "CodecInfo": "packet",
    "Producer": "producer",
    "Router": "router",
    "IceServer": "settings",
    "MediaSettings": "settings",
    "PublicationSlot": "slots",
    "Transport": "transport",
    "DataChannel": "transport",
}


def __getattr__(name: str) -> Any:
    submodule = _SUBMODULE.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{submodule}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULE])


__all__ = [
    "DEFAULT_LAYER",
    "H264",
    "OPUS",
    "VP8",
    "CodecInfo",
    "Consumer",
    "ConsumerBase",
    "DataChannel",
    "DataConsumer",
    "DataMessageTooLarge",
    "DataProducer",
    "EncodedFrame",
    "IceServer",
    "IncomingTrack",
    "LayerSpec",
    "LocalConsumer",
    "LocalProducer",
    "MediaClosed",
    "MediaError",
    "MediaSettings",
    "Producer",
    "PublicationSlot",
    "Router",
    "Transport",
    "UnsupportedCodec",
    "choose_layer",
    "sending_layers",
]
