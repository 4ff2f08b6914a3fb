"""``[whip]`` in the unit's config reaches the daemon's WHIP/WHEP sessions."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiohttp import web

from appliance.app import build_app
from appliance.config import parse_settings
from appliance.confinement import LOOPBACK_ONLY_ENV
from appliance.state import DaemonState
from edge_sfu.signaling.whip import WHIP
from edge_sfu.tokens import mint_access_token
from tests.support.waiting import wait_for

from .aiortc_whip import post_offer

pytestmark = pytest.mark.timeout(60)


async def test_whip_settings_from_the_config_expire_and_cap_sessions(
    tmp_path: Path, offer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOOPBACK_ONLY_ENV, "1")
    settings = parse_settings(
        {
            "unit": {"name": "whip-unit", "role": "hub"},
            "http": {"listen": "127.0.0.1:0", "tls": False},
            "provisioning": {"mdns": False},
            "whip": {"connect_timeout": 2, "max_sessions": 1},
        }
    )
    state = DaemonState.open(settings, tmp_path / "config.toml", tmp_path)
    app = build_app(state)
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]
        identity = state.unit.identity
        token = mint_access_token(identity.signing_key, identity.account_sid, "cam", room="yard")
        service = app[WHIP]
        assert service.settings.connect_timeout == 2.0
        base = f"http://127.0.0.1:{port}"
        result = await post_offer(base, "/whip/yard", token, offer)
        assert result.status == 201, result.body
        posted = time.monotonic()
        assert len(service.sessions) == 1
        # one session at most: another is refused while this one lasts
        other = mint_access_token(identity.signing_key, identity.account_sid, "cam2", room="yard")
        assert (await post_offer(base, "/whip/yard", other, offer)).status == 503
        # never answered: the session ends 2 s after its POST (the default would be 30 s)
        await wait_for(lambda: not service.sessions, timeout=8, what="the session expired")
        took = time.monotonic() - posted
        assert 1.5 <= took <= 5.0, took
        room = state.sfu.rooms.live_room_by_name("yard") if state.sfu else None
        assert room is None or room.by_identity("cam") is None
        assert (await post_offer(base, "/whip/yard", other, offer)).status == 201
    finally:
        await runner.cleanup()
