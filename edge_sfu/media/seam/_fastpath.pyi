"""The compiled helper (``_fastpath.c``): see that file."""

from collections.abc import Callable
from typing import Any

def set_protect(address: int, /) -> None: ...
def set_unprotect(address: int, /) -> None: ...
def protect_into(
    slot: int,
    slot_size: int,
    iov: int,
    ctx: int,
    header: bytes,
    payload: bytes,
    ext_id: int,
    seq: int,
    /,
) -> int: ...
def configure(
    consumer_type: type,
    connected_state: object,
    outbox_add: Callable[[Any], None],
    batch_slots: int,
    slot_bytes: int,
    silence_check_s: float,
    /,
) -> None: ...
def fan_out(packet: Any, consumers: list[Any], /) -> None: ...
def send_batch(
    fd: int,
    sockaddr: bytes,
    iovs: int,
    lens: list[int],
    gso: bool,
    max_segments: int,
    max_bytes: int,
    /,
) -> tuple[int, int, bool, int]: ...
def copies() -> int: ...
def receive_many(
    fd: int, count: int, offset: float, earliest: float, /
) -> tuple[list[tuple[bytes, float | None, Any]], int]: ...
def ingest(
    ctx: int, packet: bytes, twcc_id: int, packet_type: Callable[..., Any], /
) -> tuple[Any, bytes, int | None] | None: ...
