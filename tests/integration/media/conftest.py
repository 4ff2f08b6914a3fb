"""The two ways the SFU can send, for the tests that cover the send path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edge_sfu.media.seam import egress, send


@pytest.fixture(params=["batched", "plain"])
def send_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs the test with RTP sent in batches (``sendmmsg``, GSO) and again with one
    ``sendto`` per packet (``EDGE_SFU_PLAIN_SEND=1``, the fallback), and checks that every
    RTP packet the SFU sent went the way under test."""
    mode: str = request.param
    if mode == "plain":
        monkeypatch.setenv(egress.PLAIN_SEND_ENV, "1")
    else:
        monkeypatch.delenv(egress.PLAIN_SEND_ENV, raising=False)
    counts = {"batched": 0, "plain": 0}
    batch_protect = egress.BatchWriter.protect_parts
    plain_protect = send._Protector.protect_parts

    def counting_batch(self: egress.BatchWriter, *args: Any, **kwargs: Any) -> bool:
        counts["batched"] += 1
        return batch_protect(self, *args, **kwargs)

    def counting_plain(self: Any, *args: Any) -> bytes | None:
        counts["plain"] += 1
        return plain_protect(self, *args)

    monkeypatch.setattr(egress.BatchWriter, "protect_parts", counting_batch)
    monkeypatch.setattr(send._Protector, "protect_parts", counting_plain)
    yield mode
    other = "batched" if mode == "plain" else "plain"
    assert counts[other] == 0, f"{counts[other]} RTP packets were sent {other} in {mode} mode"
