"""The compiled helper (``_fastpath.c``): see that file."""

def set_protect(address: int, /) -> None: ...
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
