"""The unit's role: what runs beside the SFU.

- **kiosk**: hardware plus the call state machine; a press joins the configured room.
- **field**: the same machinery, joining a hub at start-up and never giving up (retries
  forever, jittered), recording locally while it cannot publish (``appliance.field``).
- **hub**: the SFU, the multi-view page of the field units and their recording; nothing
  local is captured (``appliance.hub``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from edge_sfu.signaling import SIGNALING

from .field.role import FieldRole
from .hub.role import add_hub_pages, setup_hub
from .kiosk.devices import KioskDevices
from .kiosk.role import KioskRole
from .kiosk.state import KioskMachine
from .mapping import audio_spec, camera_spec, kiosk_policy
from .state import DAEMON, DaemonState

KIOSK_ROLE: web.AppKey[KioskRole] = web.AppKey("appliance.kiosk", KioskRole)


def admin_pages(state: DaemonState) -> Callable[[web.Application], None] | None:
    """The role's own pages on the admin app (a hub's multi-view page), or None."""
    return add_hub_pages if state.settings.unit.role == "hub" else None


def setup_role(app: web.Application, state: DaemonState) -> None:
    """Register the role's cleanup context on ``app``."""
    if state.settings.unit.role == "hub":
        state.status.role_state = "serving"
        state.status.line = "hub: serving rooms"
        setup_hub(app, state)
        return
    app.cleanup_ctx.append(_kiosk)


async def _kiosk(app: web.Application) -> AsyncIterator[None]:
    state = app[DAEMON]
    s = state.settings
    role_ref: list[KioskRole] = []
    devices = KioskDevices(
        s,
        camera_spec(s),
        audio_spec(s),
        on_press=lambda button, long: role_ref[0].press(button, long),
        on_problem=state.status.degrade,
    )
    kind = FieldRole if s.unit.role == "field" else KioskRole
    role = kind(state, KioskMachine(kiosk_policy(s)), devices, lambda: app[SIGNALING])
    role_ref.append(role)
    app[KIOSK_ROLE] = role

    async def leave(_app: web.Application) -> None:
        await role.leave_for_shutdown()

    # aiohttp runs on_shutdown before unwinding cleanup contexts, and signaling closes its
    # sockets there: the kiosk has to leave before that for the others to see it go.
    app.on_shutdown.insert(0, leave)
    await role.start()  # a field unit starts streaming here, and keeps trying
    try:
        yield
    finally:
        await role.close()
