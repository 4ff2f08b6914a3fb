"""The fast provisioning tier hashes with argon2id at its cheapest cost."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from provisioning import passwords


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    # The production cost (t=3, 64 MiB) is about a third of this tier's CPU time across its
    # claims and sign-ins; the algorithm and hash format stay the same. The integration and
    # browser tiers sign in with the production cost.
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID)
    monkeypatch.setattr(passwords, "_HASHER", cheap)
