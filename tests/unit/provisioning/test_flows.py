"""Claim, sign-in, settings, keys, invites, export/import through the aiohttp test client."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient

from provisioning.auth import AdminStore, reset_password
from provisioning.claim import current_claim_code
from tests.support.provisioning_app import (
    NEW_PASSWORD,
    PASSWORD,
    basic,
    csrf_of,
    get_csrf,
    get_with_cookie,
    login,
    post_form,
)
from tests.support.provisioning_backend import HandWrittenTestBackend, default_config


async def test_unclaimed_unit_sends_everyone_to_claim(client: TestClient) -> None:
    resp = await client.get("/admin/settings", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/claim"
    resp = await client.get("/admin/login", allow_redirects=False)
    assert resp.headers["Location"] == "/admin/claim"


async def test_claim_wrong_then_right_code(client: TestClient, data_dir: Path) -> None:
    code = current_claim_code(data_dir)
    assert code
    token = await get_csrf(client, "/admin/claim")
    resp = await client.post(
        "/admin/claim",
        data={
            "csrf": token,
            "code": "AAAA-BBBB-CCCC-DDDD",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert resp.status == 400
    assert "claim code is not right" in await resp.text()
    assert not AdminStore(data_dir).is_claimed()
    resp = await client.post(
        "/admin/claim",
        data={
            "csrf": token,
            "code": code.lower().replace("-", " "),
            "password": "short",
            "confirm": "short",
        },
    )
    assert resp.status == 400 and "at least 12 characters" in await resp.text()
    resp = await client.post(
        "/admin/claim",
        data={"csrf": token, "code": code, "password": PASSWORD, "confirm": PASSWORD},
        allow_redirects=False,
    )
    assert resp.status == 303
    stored = AdminStore(data_dir).password_hash()
    assert stored and stored.startswith("$argon2id$") and PASSWORD not in stored
    assert (data_dir / "admin" / "password.argon2id").stat().st_mode & 0o777 == 0o600
    resp = await client.get("/admin/status")
    assert resp.status == 200 and "Status" in await resp.text()
    # The code worked once: it is gone and the claim page now sends to sign-in.
    assert current_claim_code(data_dir) is None
    resp = await client.get("/admin/claim", allow_redirects=False)
    assert resp.headers["Location"] == "/admin/login"


async def test_sign_out_and_in(signed_in: TestClient) -> None:
    client = signed_in
    resp = await post_form(client, "/admin/logout", {}, "/admin/status")
    assert resp.status == 303 and resp.headers["Location"] == "/admin/login"
    resp = await client.get("/admin/status", allow_redirects=False)
    assert resp.status == 303
    assert await login(client, "wrong password 123") == 401
    assert await login(client) == 303
    assert (await client.get("/admin/status", allow_redirects=False)).status == 200


async def test_signed_out_cookie_cannot_be_replayed(signed_in: TestClient) -> None:
    client = signed_in
    cookie = next(c for c in client.session.cookie_jar if c.key == "edge_admin")
    assert await get_with_cookie(client, "/admin/status", cookie.value) == 200
    await post_form(client, "/admin/logout", {}, "/admin/status")
    assert await get_with_cookie(client, "/admin/status", cookie.value) == 303


async def test_lockout_after_wrong_passwords(signed_in: TestClient) -> None:
    client = signed_in
    await post_form(client, "/admin/logout", {}, "/admin/status")
    statuses = [await login(client, f"wrong password {i:04d}") for i in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    resp = await client.get("/admin/login")
    text = await resp.text()
    assert resp.status == 429 and "Sign-in is locked" in text and "reset-password" in text
    # Even the right password is refused while locked.
    resp = await client.get("/admin/login")
    assert resp.status == 429


async def test_password_change_ends_other_sessions(
    signed_in: TestClient, backend: HandWrittenTestBackend, data_dir: Path
) -> None:
    from tests.support.provisioning_app import make_app, running_client

    client = signed_in
    other_cookie = next(c for c in client.session.cookie_jar if c.key == "edge_admin").value
    resp = await post_form(
        client,
        "/admin/password",
        {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        "/admin/password",
    )
    assert resp.status == 200 and "Password changed" in await resp.text()
    # This browser holds a new session; the old cookie is dead.
    assert (await client.get("/admin/settings", allow_redirects=False)).status == 200
    assert await get_with_cookie(client, "/admin/settings", other_cookie) == 303
    del backend, data_dir, make_app, running_client


async def test_wrong_current_password_changes_nothing(
    signed_in: TestClient, data_dir: Path
) -> None:
    before = AdminStore(data_dir).password_hash()
    resp = await post_form(
        signed_in,
        "/admin/password",
        {"current": "not the password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        "/admin/password",
    )
    assert resp.status == 400 and "not right" in await resp.text()
    assert AdminStore(data_dir).password_hash() == before


async def test_wrong_current_passwords_lock_the_change_out(
    signed_in: TestClient, data_dir: Path
) -> None:
    before = AdminStore(data_dir).password_hash()

    async def change(current: str) -> int:
        form = {"current": current, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        return (await post_form(signed_in, "/admin/password", form, "/admin/password")).status

    statuses = [await change(f"guess {i:04d}") for i in range(5)]
    assert statuses == [400, 400, 400, 400, 429]
    # Locked: even the right password changes nothing, and sign-in is locked too.
    assert await change(PASSWORD) == 429
    assert AdminStore(data_dir).password_hash() == before
    await post_form(signed_in, "/admin/logout", {}, "/admin/status")
    assert (await signed_in.get("/admin/login")).status == 429


async def test_console_reset_password_signs_out_and_reclaims(
    signed_in: TestClient, data_dir: Path
) -> None:
    code = await asyncio.to_thread(reset_password, data_dir)
    assert code == current_claim_code(data_dir)
    resp = await signed_in.get("/admin/status", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/claim"


async def test_settings_save_writes_file_and_applies_live(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    client = signed_in
    html = await (await client.get("/admin/settings")).text()
    form = settings_form_values(backend)
    form["audio.volume"] = "35"
    form["unit.name"] = "meeting-room"
    resp = await client.post("/admin/settings", data={"csrf": csrf_of(html), **form})
    text = await resp.text()
    assert resp.status == 200, text
    assert "Applied now: audio.volume" in text and "Needs a restart: unit.name" in text
    assert 'id="restart"' in text
    on_disk = tomllib.loads(backend.config_path.read_text())
    assert on_disk["audio"]["volume"] == 35 and on_disk["unit"]["name"] == "meeting-room"
    assert backend.live["audio.volume"] == 35
    # Secrets left empty keep their stored value.
    assert on_disk["network"]["turn_credential"] == "turn-secret-value-ABC"
    assert "turn-secret-value-ABC" not in text
    # Coming back later, the page still says what waits for the restart.
    text = await (await client.get("/admin/settings")).text()
    assert "Saved, waiting for a restart: unit.name" in text and 'id="restart"' in text
    resp = await post_form(client, "/admin/restart", {}, "/admin/settings")
    assert resp.status == 200
    await asyncio.sleep(0.7)
    assert backend.restarts == 1
    text = await (await client.get("/admin/settings")).text()
    assert "waiting for a restart" not in text


async def test_cross_field_error_saves_nothing(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    before = backend.config_path.read_bytes()
    form = settings_form_values(backend)
    form["network.udp_port_min"] = "50000"
    form["network.udp_port_max"] = "40000"
    resp = await post_form(signed_in, "/admin/settings", form, "/admin/settings")
    text = await resp.text()
    assert resp.status == 400 and "Must not be below the start" in text
    assert 'id="f-network-udp_port_max-err" role="alert">Must not' in text
    assert backend.config_path.read_bytes() == before


async def test_api_key_create_list_revoke_and_rest(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    client = signed_in
    resp = await post_form(client, "/admin/keys/create", {"name": "booking system"}, "/admin/keys")
    text = await resp.text()
    assert resp.status == 200 and 'id="new-secret"' in text
    sid, (_, secret) = next(iter(backend.keys.items()))
    assert secret in text and sid in text
    listed = await (await client.get("/admin/keys")).text()
    assert sid in listed and secret not in listed  # shown once
    assert (await client.get("/v1/Rooms", headers=basic(sid, secret))).status == 200
    resp = await post_form(client, "/admin/keys/revoke", {"sid": sid}, "/admin/keys")
    assert resp.status == 200 and "revoked" in await resp.text()
    assert (await client.get("/v1/Rooms", headers=basic(sid, secret))).status == 401
    resp = await post_form(client, "/admin/keys/revoke", {"sid": sid}, "/admin/keys")
    assert resp.status == 400


async def test_invite_link_with_qr(signed_in: TestClient) -> None:
    resp = await post_form(
        signed_in, "/admin/invites", {"room": "lobby", "ttl": "30"}, "/admin/invites"
    )
    text = await resp.text()
    assert resp.status == 200
    assert "https://kiosk-1.local/join/lobby" in text and "ttl=1800" in text
    assert 'src="data:image/svg+xml;base64,' in text
    assert "guests=5" in text  # the default guest limit


async def test_invite_guest_limit(signed_in: TestClient) -> None:
    form = {"room": "lobby", "ttl": "30", "guests": "2"}
    resp = await post_form(signed_in, "/admin/invites", form, "/admin/invites")
    assert resp.status == 200 and "guests=2" in await resp.text()
    for bad in ("0", "51", "many"):
        form["guests"] = bad
        resp = await post_form(signed_in, "/admin/invites", form, "/admin/invites")
        assert resp.status == 400 and "from 1 to 50" in await resp.text()


async def test_export_import_roundtrip(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    client = signed_in
    resp = await post_form(client, "/admin/system/export", {}, "/admin/system")
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == 'attachment; filename="kiosk-1-config.toml"'
    exported = await resp.text()
    assert "turn-secret-value-ABC" not in exported and "remote-secret-value-XYZ" not in exported
    data = tomllib.loads(exported)
    assert data["audio"]["volume"] == 80
    with_secrets = await (
        await post_form(client, "/admin/system/export", {"include_secrets": "on"}, "/admin/system")
    ).text()
    assert "turn-secret-value-ABC" in with_secrets
    # Import on "another unit": change a value and send it back.
    changed = exported.replace("volume = 80", "volume = 12")
    form = aiohttp.FormData()
    form.add_field("csrf", await get_csrf(client, "/admin/system"))
    form.add_field("config", changed.encode(), filename="cfg.toml", content_type="application/toml")
    resp = await client.post("/admin/system/import", data=form)
    assert resp.status == 200 and "imported" in await resp.text()
    on_disk = tomllib.loads(backend.config_path.read_text())
    assert on_disk["audio"]["volume"] == 12
    assert on_disk["network"]["turn_credential"] == "turn-secret-value-ABC"


async def test_factory_reset_needs_typed_confirmation(
    signed_in: TestClient, backend: HandWrittenTestBackend, data_dir: Path
) -> None:
    client = signed_in
    resp = await post_form(
        client, "/admin/system/factory-reset", {"confirm": "yes"}, "/admin/system"
    )
    assert resp.status == 400 and backend.resets == 0
    resp = await post_form(
        client, "/admin/system/factory-reset", {"confirm": "kiosk-1"}, "/admin/system"
    )
    assert resp.status == 200 and backend.resets == 1
    assert not AdminStore(data_dir).is_claimed() and current_claim_code(data_dir)
    assert (await client.get("/admin/status", allow_redirects=False)).headers[
        "Location"
    ] == "/admin/claim"


async def test_status_stream_and_simulated_buttons(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    client = signed_in
    html = await (await client.get("/admin/status")).text()
    assert "Press join" in html and "Press mute" in html
    resp = await client.post(
        "/admin/status/press", data={"csrf": csrf_of(html), "button": "mute"}, allow_redirects=False
    )
    assert resp.status == 303 and backend.presses == ["mute"] and backend.muted
    resp = await client.post(
        "/admin/status/press", data={"csrf": csrf_of(html), "button": "selfdestruct"}
    )
    assert resp.status == 400
    async with client.get("/admin/status/events") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        buf = b""
        async with asyncio.timeout(10):
            while b"event: status" not in buf or not buf.endswith(b"\n\n"):
                buf += await stream.content.readany()
    payload = buf.split(b"data: ", 1)[1].split(b"\n", 1)[0]
    import json

    snap = json.loads(payload)
    assert snap["app"]["role"] == "kiosk" and snap["app"]["muted"] is True
    assert "memory" in snap["system"] and "uptime_s" in snap["system"]


def settings_form_values(backend: HandWrittenTestBackend) -> dict[str, str]:
    """What the browser would post for the current settings (secrets empty)."""
    from provisioning.settings_form import get_path

    out: dict[str, str] = {}
    cfg = backend.load_settings()
    for spec in backend.settings_schema():
        value = get_path(cfg, spec.path)
        if spec.secret:
            out[spec.path] = ""
        elif spec.kind == "bool":
            if value:
                out[spec.path] = "on"
        elif spec.kind == "list":
            out[spec.path] = "\n".join(value)
        else:
            out[spec.path] = str(value)
    return out


def test_default_config_is_valid() -> None:
    from provisioning.settings_form import check_settings
    from tests.support.provisioning_backend import SCHEMA

    assert check_settings(SCHEMA, default_config()) == {}


async def _first_event(stream: aiohttp.ClientResponse) -> bytes:
    buf = b""
    async with asyncio.timeout(10):
        while b"event: status" not in buf:
            buf += await stream.content.readany()
    return buf


async def test_status_stream_ends_at_sign_out(signed_in: TestClient) -> None:
    client = signed_in
    async with client.get("/admin/status/events") as stream:
        await _first_event(stream)
        await post_form(client, "/admin/logout", {}, "/admin/status")
        async with asyncio.timeout(10):
            while not stream.content.at_eof():
                await stream.content.readany()


async def test_open_status_stream_does_not_hold_up_shutdown(
    backend: HandWrittenTestBackend, data_dir: Path
) -> None:
    from tests.support.provisioning_app import claim, make_app, running_client

    app, _ = make_app(backend, data_dir)
    async with asyncio.timeout(15), running_client(app) as client:
        await claim(client, data_dir)
        stream = await client.get("/admin/status/events")
        await _first_event(stream)
    # Leaving the block shut the server down with the stream still open, within the timeout.


async def test_invite_lifetime_is_the_backends_rule(
    signed_in: TestClient, backend: HandWrittenTestBackend, monkeypatch
) -> None:
    # The page states and checks the unit's rule, whatever it is: nothing of it is its own.
    monkeypatch.setattr(backend, "invite_lifetime", lambda: (10 * 60, 24 * 3600))
    text = await (await signed_in.get("/admin/invites")).text()
    assert 'min="10" max="1440"' in text and "From 10 minutes to 1 day." in text
    for bad in ("9", "1441"):
        form = {"room": "lobby", "ttl": bad}
        resp = await post_form(signed_in, "/admin/invites", form, "/admin/invites")
        assert resp.status == 400 and "minutes from 10 to 1440" in await resp.text()
    form = {"room": "lobby", "ttl": "10"}
    resp = await post_form(signed_in, "/admin/invites", form, "/admin/invites")
    assert resp.status == 200 and "ttl=600" in await resp.text()
