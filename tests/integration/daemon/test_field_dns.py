"""A field unit whose hub's name does not resolve keeps trying, says why, and is live soon
after the name resolves.

The hub and the field unit are real daemons in a network namespace of their own, where names
resolve from the namespace's hosts file only (``tests.support.netns.resolver_host``): the hub
listens on the namespace's loopback, the field unit knows it as ``hub.test``, which does not
resolve at first. Meanwhile the unit says so (state, reason, next retry, on the status API
and in its status line) and records locally; once the name resolves it is live at the next
retry and its video reaches the hub. Both ways to the hub: the unit's own protocol and WHIP.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.daemon import Daemon, running_daemon, video_rate
from tests.support.netns import resolver_host
from tests.support.waiting import wait_for_sync

pytestmark = pytest.mark.timeout(240)

LAYERS = [{"name": "main", "width": 320, "height": 180, "bitrate": 300_000}]
HUB_NAME = "hub.test"
RETRY_MAX_S = 2.0
#: Once the name resolves: the next retry (at most ``RETRY_MAX_S`` away) and a join.
LIVE_WITHIN_S = RETRY_MAX_S + 10.0


def link(unit: Daemon) -> dict[str, Any]:
    return dict(unit.status().get("link") or {})


def field_config(transport: str, hub: Daemon, port: int) -> dict[str, Any]:
    base = f"http://{HUB_NAME}:{port}"
    config: dict[str, Any] = {
        "unit": {"name": "field-d", "role": "field"},
        "camera": {"backend": "synthetic", "framerate": 15, "layers": LAYERS},
        "audio": {"enabled": False},
        "field": {"retry_initial": 0.5, "retry_max": RETRY_MAX_S, "retry_jitter": 0.3},
        "recordings": {"min_free_mb": 64},
    }
    if transport == "whip":
        made = hub.cli("token", "--identity", "field-d", "--room", "field")
        assert made.returncode == 0, made.stderr
        config["field"].update(
            transport="whip", whip_url=f"{base}/whip/field", whip_token=made.stdout.strip()
        )
    else:
        key = hub.api_key()
        config["kiosk"] = {
            "identity": "field-d",
            "room": "field",
            "remote_url": base,
            "remote_api_key_sid": key["sid"],
            "remote_api_key_secret": key["secret"],
        }
    return config


@pytest.mark.parametrize("transport", ["unit", "whip"])
def test_field_unit_rides_out_a_name_that_does_not_resolve(tmp_path: Path, transport: str):
    hub_config: dict[str, Any] = {"unit": {"name": "hub", "role": "hub"}}
    with (
        resolver_host() as ns,
        running_daemon(tmp_path, hub_config, name="hub", prefix=ns.inside) as hub,
    ):
        port = urlsplit(hub.wait_ready(60)).port
        assert port is not None
        config = field_config(transport, hub, port)
        with running_daemon(tmp_path, config, name="field", prefix=ns.inside) as field:
            field.wait_ready(60)
            # The name fails: reconnecting, with the reason, a retry scheduled, again and again.
            seen: list[dict[str, Any]] = []

            def failing() -> bool:
                now = link(field)
                seen.append(now)
                return now.get("state") == "reconnecting" and now.get("attempt", 0) >= 3

            wait_for_sync(failing, timeout=30, what="three failed attempts", interval=0.1)
            down = [s for s in seen if s.get("state") == "reconnecting"]
            assert all(s["state"] in ("starting", "reconnecting") for s in seen), seen
            reasons = {s["reason"] for s in down if s["reason"]}
            dns = f"{HUB_NAME} does not resolve (DNS"
            assert reasons and all(r.startswith(dns) for r in reasons), reasons
            waits = [s["retry_in_s"] for s in down if s["retry_in_s"] is not None]
            assert waits and max(waits) <= RETRY_MAX_S, waits
            assert any(s["recording_locally"] for s in down), down
            status = field.status()["status"]
            assert "Reconnecting since" in status and dns in status, status
            assert video_rate(hub, "field-d") == 0.0

            # The name resolves: live at the next retry.
            ns.set_names({HUB_NAME: "127.0.0.1"})
            resolved_at = time.monotonic()
            wait_for_sync(
                lambda: link(field).get("state"),
                lambda state: state == "live",
                timeout=LIVE_WITHIN_S,
                what=f"live within {LIVE_WITHIN_S:g} s of the name resolving",
                interval=0.1,
            )
            print(f"{transport}: live {time.monotonic() - resolved_at:.1f} s after the name")
            wait_for_sync(
                lambda: video_rate(hub, "field-d"),
                lambda kbps: kbps > 20,
                timeout=30,
                what="its video at the hub",
            )
            wait_for_sync(
                lambda: not link(field)["recording_locally"],
                timeout=15,
                what="the local recording stopped",
            )
