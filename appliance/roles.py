"""The unit's role: what runs beside the SFU (kiosk hardware and call logic; field; hub)."""

from __future__ import annotations

from aiohttp import web

from .app import DaemonState


def setup_role(app: web.Application, state: DaemonState) -> None:
    """Register the role's cleanup contexts on ``app``."""
    role = state.settings.unit.role
    state.role_state = "idle"
    state.set_status(f"{role}: idle")
