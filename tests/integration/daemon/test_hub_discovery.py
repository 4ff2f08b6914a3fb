"""A field unit that announces itself on the LAN (mDNS, confined to loopback here) is listed
on the hub's multi-view data as discovered before it ever joins."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.daemon import free_port, running_daemon
from tests.support.waiting import wait_for_sync


def test_a_field_unit_that_has_not_joined_is_discovered(tmp_path: Path):
    hub_config: dict[str, dict[str, object]] = {
        "unit": {"name": "hub", "role": "hub"},
        "provisioning": {"mdns": True},
    }
    field_config: dict[str, dict[str, object]] = {
        "unit": {"name": "field-north", "role": "field"},
        "provisioning": {"mdns": True},
        "http": {"listen": f"127.0.0.1:{free_port()}", "tls": False},  # port 0 is not announced
        # a hub that is not there: the unit keeps trying, and never joins this one
        "kiosk": {"remote_url": "http://127.0.0.1:9", "remote_token": "x", "room": "field"},
        "camera": {"backend": "none"},
        "audio": {"enabled": False},
    }
    with running_daemon(tmp_path, hub_config, name="hub") as hub:
        url = hub.wait_ready(60)
        token = hub.cli("token", "--identity", "wall", "--room", "field").stdout.strip()

        def units() -> dict[str, dict[str, object]]:
            request = urllib.request.Request(f"{url}/admin/hub/units")
            request.add_header("Authorization", f"Bearer {token}")
            with urllib.request.urlopen(request, timeout=10) as response:
                return {u["identity"]: u for u in json.loads(response.read())["units"]}

        with running_daemon(tmp_path, field_config, name="field") as field:
            field.wait_ready(60)
            found = wait_for_sync(
                units, lambda got: "field-north" in got, timeout=30, what="field unit discovered"
            )
            assert found["field-north"]["state"] == "discovered"
            assert found["field-north"]["address"] == "127.0.0.1"
            wait_for_sync(
                lambda: field.status()["link"]["state"],
                lambda state: state == "reconnecting",
                timeout=30,
                what="the field unit trying its own hub",
            )
        # its announcement is withdrawn when it stops
        wait_for_sync(units, lambda got: "field-north" not in got, timeout=30, what="withdrawn")

        # without a token (or with another room's) the data is refused
        bad = hub.cli("token", "--identity", "wall", "--room", "other").stdout.strip()
        for header in ({}, {"Authorization": f"Bearer {bad}"}):
            request = urllib.request.Request(f"{url}/admin/hub/units", headers=header)
            try:
                urllib.request.urlopen(request, timeout=10)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
            else:
                raise AssertionError("hub units served without a viewer token")
