"""Errors of the media plane."""

from __future__ import annotations

from edge_sfu.errors import SfuError


class MediaError(SfuError):
    """Root of the media plane's errors."""


class MediaClosed(MediaError, RuntimeError):
    """The router, transport, producer or consumer was closed."""


class UnsupportedCodec(MediaError, ValueError):
    """A codec the forwarder cannot carry (only Opus, H.264 and VP8 are forwarded)."""


class DataMessageTooLarge(MediaError, ValueError):
    """A data-track message is larger than ``MediaSettings.max_data_message_bytes``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"data message of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit
