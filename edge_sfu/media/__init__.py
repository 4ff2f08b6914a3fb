"""The selective forwarding engine: encoded media from producers to consumers, no transcoding.

Start at ``Router`` (one per room). See ``docs/media.md``.
"""

from edge_sfu.media.consumer import Consumer
from edge_sfu.media.consumer_base import ConsumerBase
from edge_sfu.media.data import DataConsumer, DataProducer
from edge_sfu.media.errors import DataMessageTooLarge, MediaClosed, MediaError, UnsupportedCodec
from edge_sfu.media.incoming import IncomingTrack
from edge_sfu.media.layers import DEFAULT_LAYER, LayerSpec, choose_layer
from edge_sfu.media.local import EncodedFrame, LocalConsumer, LocalProducer
from edge_sfu.media.packet import H264, OPUS, VP8, CodecInfo
from edge_sfu.media.producer import Producer
from edge_sfu.media.router import Router
from edge_sfu.media.settings import IceServer, MediaSettings
from edge_sfu.media.transport import Transport

__all__ = [
    "DEFAULT_LAYER",
    "H264",
    "OPUS",
    "VP8",
    "CodecInfo",
    "Consumer",
    "ConsumerBase",
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
    "Router",
    "Transport",
    "UnsupportedCodec",
    "choose_layer",
]
