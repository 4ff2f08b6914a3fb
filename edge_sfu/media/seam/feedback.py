"""Raw RTCP from a participant, before aiortc parses it.

aiortc's RTCP parser knows no transport-cc feedback (RTPFB FMT 15): it reads its FCI as NACK
pairs, and a compound it cannot parse is dropped whole. ``tap_rtcp`` hands every decrypted
RTCP datagram to a callback first, then lets aiortc route it as before.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Callable
from typing import Any

from aiortc.rtcdtlstransport import RTCDtlsTransport

logger = logging.getLogger(__name__)


def tap_rtcp(dtls: RTCDtlsTransport, on_rtcp: Callable[[bytes], None]) -> bool:
    """Call ``on_rtcp(data)`` with each decrypted RTCP datagram ``dtls`` receives, before
    aiortc's own handling; once per transport (returns whether it was installed now).
    ``on_rtcp`` must not raise; if it does, the error is logged and aiortc still runs."""
    if getattr(dtls, "_edge_sfu_rtcp_tap", False):
        return False
    original: Any = dtls._handle_rtcp_data
    # A bound method (Transport._on_rtcp_raw) is held weakly: the DTLS transport outlives
    # a closed Transport while aiortc winds its tasks down, and must not keep it alive.
    if inspect.ismethod(on_rtcp):
        method = weakref.WeakMethod(on_rtcp)
        del on_rtcp  # the closure below must not hold it strongly
        get_callback: Callable[[], Callable[[bytes], None] | None] = method
    else:
        function = on_rtcp
        get_callback = lambda: function  # noqa: E731

    async def handle_rtcp_data(data: bytes) -> None:
        callback = get_callback()
        if callback is not None:
            try:
                callback(data)
            except Exception:
                logger.exception("RTCP tap failed")
        await original(data)

    dtls._handle_rtcp_data = handle_rtcp_data  # type: ignore[method-assign]
    dtls._edge_sfu_rtcp_tap = True  # type: ignore[attr-defined]
    return True
