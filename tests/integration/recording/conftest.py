"""Fixtures: the signaling tests' running SFU (short timers) and Python clients that close."""

from __future__ import annotations

from tests.integration.signaling.conftest import clients, sfu

__all__ = ["clients", "sfu"]
