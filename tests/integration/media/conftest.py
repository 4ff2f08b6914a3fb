"""The three ways the SFU can send, for the tests that cover the send path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from edge_sfu.media.seam import egress, send


@pytest.fixture(params=["compiled", "python", "plain"])
def send_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs the test with RTP sent in batches (``sendmmsg``, GSO), each copy written and
    protected by the compiled helper; again with the batches filled in Python
    (``EDGE_SFU_PURE_PYTHON=1``, the fallback where nothing could be compiled); and again
    with one ``sendto`` per packet (``EDGE_SFU_PLAIN_SEND=1``, the fallback where batching
    cannot work). Checks that every RTP packet the SFU sent went the way under test
    (compiled: most copies are made by the compiled fan-out, ``egress.fan_out``, the rest
    through ``BatchWriter.queue``)."""
    mode: str = request.param
    monkeypatch.setenv(egress.PLAIN_SEND_ENV, "1" if mode == "plain" else "0")
    monkeypatch.setenv(egress.PURE_PYTHON_ENV, "1" if mode == "python" else "0")
    if mode == "compiled":
        # ``make test`` installs a compiler: here the helper must have been built
        assert egress.fast_path_available(), "the compiled send helper was not built"
    counts = {"compiled": 0, "python": 0, "plain": 0}
    batch_queue = egress.BatchWriter.queue
    plain_protect = send._Protector.protect_parts

    def counting_queue(self: egress.BatchWriter, *args: Any) -> bool:
        counts["compiled" if self.compiled else "python"] += 1
        return batch_queue(self, *args)

    def counting_plain(self: Any, *args: Any) -> bytes | None:
        counts["plain"] += 1
        return plain_protect(self, *args)

    monkeypatch.setattr(egress.BatchWriter, "queue", counting_queue)
    monkeypatch.setattr(send._Protector, "protect_parts", counting_plain)
    fanned_before = egress.compiled_copies()
    yield mode
    # copies the compiled fan-out queued itself (not through ``queue``): compiled ones
    counts["compiled"] += egress.compiled_copies() - fanned_before
    others = {name: n for name, n in counts.items() if name != mode and n}
    assert not others, f"RTP packets sent another way than {mode}: {others}"
