"""Security properties: every admin route needs a session, CSRF on every form, cookie flags,
the claim code works once, secrets stay out of logs and exports, HTTPS redirect."""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

from provisioning import tls
from provisioning.app import cookie_secure
from provisioning.claim import claim as do_claim
from provisioning.claim import current_claim_code
from provisioning.errors import ClaimError
from provisioning.redirect import https_redirect_middleware
from tests.support.provisioning_app import (
    PASSWORD,
    claim,
    csrf_of,
    get_csrf,
    make_app,
    post_form,
    running_client,
)
from tests.support.provisioning_backend import HandWrittenTestBackend


def _admin_routes(admin: web.Application) -> list[tuple[str, str, str]]:
    out = []
    for route in admin.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        out.append((route.method, str(path), route.name or ""))
    return out


async def test_every_private_route_refuses_without_session(
    backend: HandWrittenTestBackend, data_dir: Path
) -> None:
    app, admin = make_app(backend, data_dir)
    routes = _admin_routes(admin)
    private = [r for r in routes if not r[2].startswith("public")]
    # The router really was enumerated: all pages are in it.
    assert {
        "/admin/settings",
        "/admin/keys/create",
        "/admin/system/factory-reset",
        "/admin/status/events",
        "/admin/tls/upload",
        # The status page's operator tools and the invite revocation.
        "/admin/status/doctor",
        "/admin/status/snapshot",
        "/admin/status/levels",
        "/admin/status/logs",
        "/admin/status/speaker-test",
        "/admin/status/rooms/end",
        "/admin/status/rooms/remove",
        "/admin/invites/revoke",
    } <= {p for _, p, _ in private}
    public_names = {n for _, _, n in routes if n.startswith("public")}
    # Spelled out, not imported from handlers_auth.PUBLIC_ROUTES: a route made public by
    # mistake there must fail here.
    assert public_names == {
        "public-claim",
        "public-claim-post",
        "public-login",
        "public-login-post",
        "public-ca",
        "public-health",
        "public-static",
    }
    async with running_client(app) as client:
        await claim(client, data_dir)  # a claimed unit, but this client has no session
        anon = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        try:
            for method, path, name in private:
                if method == "HEAD":
                    continue
                resp = await anon.request(
                    method, client.make_url(path), allow_redirects=False, data={"csrf": "0" * 64}
                )
                body = await resp.text()
                if method == "GET":
                    assert resp.status == 303, (name, resp.status)
                    assert resp.headers["Location"] == "/admin/login"
                else:
                    assert resp.status == 403, (name, resp.status)
                assert "Settings" not in body and "API keys" not in body, name
        finally:
            await anon.close()
        # A public page is reachable: the CA certificate (needed before trusting the unit).
        tls.ensure_certificates(data_dir, ["localhost"], ["127.0.0.1"])
        resp = await client.get("/admin/ca.crt")
        assert resp.status == 200 and b"BEGIN CERTIFICATE" in await resp.read()


@pytest.mark.parametrize("token", [None, "", "0" * 64, "zz", "a" * 10000])
async def test_form_post_without_or_with_wrong_csrf_is_refused(
    signed_in: TestClient, backend: HandWrittenTestBackend, token: str | None
) -> None:
    before = backend.config_path.read_bytes()
    data = {"name": "sneaky"} if token is None else {"name": "sneaky", "csrf": token}
    resp = await signed_in.post("/admin/keys/create", data=data)
    assert resp.status == 403 and "expired or did not come from this page" in await resp.text()
    assert backend.keys == {}
    resp = await signed_in.post(
        "/admin/system/factory-reset",
        data={"confirm": "kiosk-1", **({} if token is None else {"csrf": token})},
    )
    assert resp.status == 403 and backend.resets == 0
    assert backend.config_path.read_bytes() == before


async def test_csrf_token_of_another_session_is_refused(
    backend: HandWrittenTestBackend, data_dir: Path
) -> None:
    app, _ = make_app(backend, data_dir)
    async with running_client(app) as a:
        await claim(a, data_dir)
        token_a = await get_csrf(a, "/admin/keys")
        await post_form(a, "/admin/logout", {}, "/admin/keys")
        from tests.support.provisioning_app import login

        assert await login(a) == 303
        resp = await a.post("/admin/keys/create", data={"csrf": token_a, "name": "x"})
        assert resp.status == 403


async def test_json_post_is_refused(signed_in: TestClient) -> None:
    resp = await signed_in.post("/admin/keys/create", json={"name": "x"})
    assert resp.status == 403


async def test_cookie_flags_on_loopback_http(client: TestClient, data_dir: Path) -> None:
    code = current_claim_code(data_dir)
    token = await get_csrf(client, "/admin/claim")
    resp = await client.post(
        "/admin/claim",
        data={"csrf": token, "code": code, "password": PASSWORD, "confirm": PASSWORD},
        allow_redirects=False,
    )
    header = next(h for h in resp.headers.getall("Set-Cookie") if h.startswith("edge_admin="))
    assert "HttpOnly" in header and "SameSite=Strict" in header
    assert re.search(r"Max-Age=\d+", header) and "Path=/admin/" in header
    assert "Secure" not in header  # plain-HTTP localhost only


async def test_cookie_flags_over_https(backend: HandWrittenTestBackend, data_dir: Path) -> None:
    paths = tls.ensure_certificates(data_dir, ["localhost"], ["127.0.0.1"])
    app, _ = make_app(backend, data_dir)
    async with running_client(app, ssl=tls.server_context(paths)) as client:
        client_ctx = ssl.create_default_context(cafile=str(paths.ca_cert))
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            url = f"https://localhost:{client.port}"
            page = await (await s.get(url + "/admin/claim", ssl=client_ctx)).text()
            resp = await s.post(
                url + "/admin/claim",
                ssl=client_ctx,
                allow_redirects=False,
                data={
                    "csrf": csrf_of(page),
                    "code": current_claim_code(data_dir),
                    "password": PASSWORD,
                    "confirm": PASSWORD,
                },
            )
            assert resp.status == 303
            header = next(
                h for h in resp.headers.getall("Set-Cookie") if h.startswith("edge_admin=")
            )
            assert "Secure" in header and "HttpOnly" in header and "SameSite=Strict" in header


def test_cookie_secure_outside_localhost() -> None:
    req = make_mocked_request("GET", "/admin/login")
    # make_mocked_request has no peer: not loopback, so Secure.
    assert cookie_secure(req) is True


def test_claim_code_works_once(data_dir: Path) -> None:
    code = current_claim_code(data_dir)
    assert code
    do_claim(data_dir, code, PASSWORD)
    with pytest.raises(ClaimError):
        do_claim(data_dir, code, "another good passphrase")
    assert current_claim_code(data_dir) is None


async def test_secrets_never_in_logs_or_exports(
    signed_in: TestClient, backend: HandWrittenTestBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = signed_in
    resp = await post_form(client, "/admin/keys/create", {"name": "cam"}, "/admin/keys")
    assert resp.status == 200
    sid, (_, secret) = next(iter(backend.keys.items()))
    await post_form(client, "/admin/logout", {}, "/admin/status")
    from tests.support.provisioning_app import login

    assert await login(client, "wrong password zz") == 401
    assert await login(client) == 303
    cookie = next(c for c in client.session.cookie_jar if c.key == "edge_admin").value
    token = await get_csrf(client, "/admin/system")
    exported = await (await post_form(client, "/admin/system/export", {}, "/admin/system")).text()
    logs = "\n".join(r.getMessage() for r in caplog.records)
    logs += "\n".join(str(r.args) for r in caplog.records)
    for s in (
        PASSWORD,
        "wrong password zz",
        secret,
        cookie,
        token,
        "turn-secret-value-ABC",
        "remote-secret-value-XYZ",
    ):
        assert s not in logs
    for s in (
        PASSWORD,
        secret,
        cookie,
        token,
        "turn-secret-value-ABC",
        "remote-secret-value-XYZ",
        "argon2",
    ):
        assert s not in exported
    assert sid in logs  # the SID is an identifier, not a secret


async def test_security_headers(client: TestClient) -> None:
    resp = await client.get("/admin/claim")
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"


async def test_http_redirects_to_https_except_localhost() -> None:
    app = web.Application(middlewares=[https_redirect_middleware(8443)])

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app.router.add_get("/admin/login", hello)
    async with running_client(app) as client:  # loopback: served
        assert (await client.get("/admin/login")).status == 200
    mw = https_redirect_middleware(8443)
    req = make_mocked_request("POST", "/admin/login?x=1", headers={"Host": "unit.local:8080"})
    with pytest.raises(web.HTTPPermanentRedirect) as exc:
        await mw(req, hello)
    assert exc.value.location == "https://unit.local:8443/admin/login?x=1"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/static/../app.py",
        "/admin/static/%2e%2e/app.py",
        "/admin/static/..%2fauth.py",
        "/admin/static/",
        "/admin/static/../../pyproject.toml",
    ],
)
async def test_static_files_do_not_leak_source(client: TestClient, path: str) -> None:
    resp = await client.get(path, allow_redirects=False)
    body = await resp.text()
    assert resp.status in (303, 403, 404), (path, resp.status)
    assert "import" not in body and "[project]" not in body


async def test_static_files_are_public(client: TestClient) -> None:
    resp = await client.get("/admin/static/admin.css")
    assert resp.status == 200 and "box-sizing" in await resp.text()
