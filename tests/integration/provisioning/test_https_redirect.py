"""HTTP to HTTPS on real sockets: a client on another address is redirected, loopback is not."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from provisioning.redirect import https_redirect_middleware
from tests.support.provisioning_app import lan_address, make_app, running_client
from tests.support.provisioning_backend import HandWrittenTestBackend


async def test_plain_http_redirects_except_localhost(
    backend: HandWrittenTestBackend, data_dir: Path
) -> None:
    lan = lan_address()
    app, _ = make_app(backend, data_dir)
    # The daemon serves the same app on both listeners; here the plain one has the middleware.
    app.middlewares.append(https_redirect_middleware(8443))
    async with running_client(app, host="0.0.0.0") as client:
        port = client.port
        async with aiohttp.ClientSession() as s:
            resp = await s.post(f"http://{lan}:{port}/admin/login?next=x", allow_redirects=False)
            assert resp.status == 308
            assert resp.headers["Location"] == f"https://{lan}:8443/admin/login?next=x"
            resp = await s.get(f"http://127.0.0.1:{port}/admin/claim", allow_redirects=False)
            assert resp.status == 200
