"""A field unit publishes to a hub daemon over WHIP (RFC 9725).

Needs the hub's WHIP endpoint (``POST /whip/{room}``, built apart from the field role): where
the hub does not have it yet this test is skipped, saying so.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import running_daemon, video_rate
from tests.support.waiting import wait_for_sync

LAYERS = [{"name": "main", "width": 320, "height": 180, "bitrate": 300_000}]


def has_whip(url: str) -> bool:
    """Whether the hub answers WHIP at all (a 404 is a hub without the endpoint)."""
    request = urllib.request.Request(f"{url}/whip/field", method="OPTIONS")
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as exc:
        return exc.code != 404
    return True


def test_field_unit_publishes_to_a_hub_over_whip(tmp_path: Path):
    hub_config: dict[str, Any] = {"unit": {"name": "hub", "role": "hub"}}
    with running_daemon(tmp_path, hub_config, name="hub") as hub:
        url = hub.wait_ready(60)
        if not has_whip(url):
            pytest.skip("this hub has no WHIP endpoint (POST /whip/{room}) yet")
        made = hub.cli("token", "--identity", "field-w", "--room", "field")
        assert made.returncode == 0, made.stderr
        field_config: dict[str, Any] = {
            "unit": {"name": "field-w", "role": "field"},
            "camera": {"backend": "synthetic", "framerate": 15, "layers": LAYERS},
            "audio": {"enabled": False},
            "field": {
                "transport": "whip",
                "whip_url": f"{url}/whip/field",
                "whip_token": made.stdout.strip(),
                "retry_max": 2.0,
            },
        }
        with running_daemon(tmp_path, field_config, name="field") as field:
            field.wait_ready(60)
            wait_for_sync(
                lambda: field.status()["link"]["state"],
                lambda state: state == "live",
                timeout=60,
                what="the field unit live over WHIP",
            )
            wait_for_sync(
                lambda: video_rate(hub, "field-w"),
                lambda kbps: kbps > 20,
                timeout=30,
                what="its video at the hub",
            )
            assert field.stop() == 0
        wait_for_sync(
            lambda: video_rate(hub, "field-w"),
            lambda kbps: kbps == 0,
            timeout=30,
            what="gone from the hub after its DELETE",
        )
