"""Import lists every problem at once and what waits for a restart; the HTTPS page tells the
truth under plain HTTP; the restart page names the unit's next address and can ask it."""

from __future__ import annotations

import asyncio
import re
import tomllib
from html import unescape

import aiohttp
import tomli_w
from aiohttp.test_utils import TestClient

from provisioning.app import csp
from provisioning.backend import Address
from tests.support.provisioning_app import csrf_of, get_csrf, post_form
from tests.support.provisioning_backend import HandWrittenTestBackend, default_config

from .test_flows import settings_form_values


async def _import(client: TestClient, data: dict) -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field("csrf", await get_csrf(client, "/admin/system"))
    form.add_field("config", tomli_w.dumps(data).encode(), filename="cfg.toml")
    resp = await client.post("/admin/system/import", data=form)
    return resp.status, await resp.text()


def _listed(html: str, list_id: str) -> list[str]:
    match = re.search(rf'<ul[^>]*id="{list_id}">(.*?)</ul>', html, re.S)
    assert match, f"no #{list_id}"
    return [unescape(re.sub(r"<[^>]+>", "", li)) for li in re.findall(r"<li>(.*?)</li>", match[1])]


async def test_import_lists_every_problem_of_the_file_at_once(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    before = backend.config_path.read_bytes()
    data = default_config()
    data["unit"]["name"] = 42  # wrong type
    data["room"]["max_participants"] = 99  # out of range
    data["audio"]["volume"] = "loud"  # wrong type
    data["network"]["udp_port_min"] = 50000  # above udp_port_max: the backend's own check
    data["camera"]["layers"][1]["width"] = 5  # below the minimum, in a list item
    status, html = await _import(signed_in, data)
    assert status == 400 and "this file has 5 problems" in html
    problems = _listed(html, "import-problems")
    keys = [
        "unit.name",
        "room.max_participants",
        "camera.layers.1.width",
        "audio.volume",
        "network.udp_port_max",
    ]
    assert len(problems) == 5
    for key in keys:
        assert sum(key in line for line in problems) == 1, (key, problems)
    # Each named where it is on the settings page, with what is wrong.
    assert any(p.startswith("Room: Max participants room.max_participants") for p in problems)
    assert any("at most 16" in p for p in problems)
    assert any("Camera layer 2: Width (px)" in p for p in problems)
    assert backend.config_path.read_bytes() == before


async def test_import_says_what_applied_and_what_waits_for_a_restart(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    data = default_config()
    data["audio"]["volume"] = 12  # live
    data["unit"]["role"] = "hub"  # waits for a restart
    status, html = await _import(signed_in, data)
    assert status == 200 and "Configuration imported" in html
    assert _listed(html, "import-applied") == ["Audio: Volume (%) audio.volume"]
    assert _listed(html, "import-restart") == ["Unit: Role unit.role"]
    assert 'id="restart"' in html  # a restart button right there
    assert tomllib.loads(backend.config_path.read_text())["unit"]["role"] == "hub"


async def _links_answer(client: TestClient, html: str) -> list[str]:
    main = html.split("<main>", 1)[1].split("</main>", 1)[0]
    dead = []
    for href in set(re.findall(r'href="([^"#]+)', main)):
        resp = await client.get(unescape(href), allow_redirects=False)
        if resp.status != 200:
            dead.append(f"{href}: {resp.status}")
    return dead


async def test_https_page_under_plain_http_says_https_is_off(signed_in: TestClient) -> None:
    resp = await signed_in.get("/admin/tls")
    html = await resp.text()
    assert resp.status == 200 and "HTTPS is off" in html
    for claim in ("Certificate in use", "ca.crt", "Download the CA", "above", "CA SHA-256"):
        assert claim not in html, claim
    assert await _links_answer(signed_in, html) == []
    # The CA download itself says why there is none.
    resp = await signed_in.get("/admin/ca.crt")
    assert resp.status == 404 and "HTTPS is off" in await resp.text()


async def test_https_page_offers_the_restart_when_https_is_saved_on(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    backend.next_address = Address(tls=True)
    html = await (await signed_in.get("/admin/tls")).text()
    assert "HTTPS is off" in html and "starts with the next restart" in html
    assert 'action="/admin/restart"' in html


async def test_restart_page_names_the_https_address_and_may_ask_it(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    backend.next_address = Address(tls=True, port=9443)
    health = await signed_in.get("/admin/health")
    boot = (await health.json())["boot"]
    assert health.headers["Access-Control-Allow-Origin"] == "*"
    resp = await post_form(signed_in, "/admin/restart", {}, "/admin/status")
    html = await resp.text()
    assert resp.status == 200
    assert 'href="https://127.0.0.1:9443/admin/"' in html and "HTTPS is now on" in html
    assert 'data-health="https://127.0.0.1:9443/admin/health"' in html
    assert f'data-boot="{boot}"' in html and "/admin/static/restart.js" in html
    assert "connect-src 'self' https://127.0.0.1:9443;" in resp.headers["Content-Security-Policy"]
    await asyncio.sleep(0.8)
    assert backend.restarts == 1


async def test_restart_page_without_a_change_of_address(signed_in: TestClient) -> None:
    resp = await post_form(signed_in, "/admin/restart", {}, "/admin/status")
    html = await resp.text()
    port = signed_in.port
    assert f'href="http://127.0.0.1:{port}/admin/"' in html and "same address" in html
    assert "HTTPS is now" not in html


def test_only_a_plain_origin_joins_the_policy() -> None:
    assert "connect-src 'self' https://unit.local:8443;" in csp("https://unit.local:8443")
    assert "connect-src 'self' http://[fd00::1]:80;" in csp("http://[fd00::1]:80")
    for bad in ("https://x; script-src *", "javascript:alert(1)", "https://a b", "*"):
        assert "connect-src 'self';" in csp(bad), bad


async def test_settings_form_shows_field_and_cross_field_problems_together(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    before = backend.config_path.read_bytes()
    html = await (await signed_in.get("/admin/settings")).text()
    form = settings_form_values(backend)
    form["room.max_participants"] = "99"  # the field's own range
    form["network.udp_port_min"] = "50000"  # above udp_port_max: the backend's check
    resp = await signed_in.post("/admin/settings", data={"csrf": csrf_of(html), **form})
    text = await resp.text()
    assert resp.status == 400
    assert re.search(r'id="f-room-max_participants-err"[^>]*>Use a value of at most 16', text)
    assert re.search(r'id="f-network-udp_port_max-err"[^>]*>Must not be below', text)
    assert "(1 to fix)" in text and backend.config_path.read_bytes() == before


async def test_settings_flashes_name_keys_with_their_labels(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    html = await (await signed_in.get("/admin/settings")).text()
    form = settings_form_values(backend)
    form["unit.role"] = "hub"
    resp = await signed_in.post("/admin/settings", data={"csrf": csrf_of(html), **form})
    assert "Needs a restart: unit.role (Role)." in await resp.text()
