"""The admin page over the unit's own HTTPS certificate, from a LAN address, in Chromium.

Chromium is told to trust exactly the unit's server key (``--ignore-certificate-errors-spki-list``),
which stands in for an admin installing the unit's CA; everything else about TLS is real.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.async_api import async_playwright

from provisioning import tls
from provisioning.backend import Address
from provisioning.claim import current_claim_code
from tests.support.provisioning_app import PASSWORD, lan_address, make_app, running_client
from tests.support.provisioning_backend import HandWrittenTestBackend

from .pagehelpers import CHROMIUM, FLAGS, claim, snap

pytestmark = pytest.mark.browser


def _spki_hash(cert_path: Path) -> str:
    cert = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


async def test_admin_over_https_on_a_lan_address(tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    lan = lan_address()
    data_dir = tmp_path / "data"
    mgr = tls.TlsManager(data_dir, ["unit.local", "localhost"], [lan, "127.0.0.1"], "unit")
    backend = HandWrittenTestBackend(tmp_path / "config.toml")
    backend.next_address = Address(tls=True)  # HTTPS is on, and stays on after a restart
    app, _ = make_app(backend, data_dir, tls=mgr)
    async with running_client(app, host=lan, ssl=mgr.context) as client:
        base = f"https://{lan}:{client.port}"
        args = [*FLAGS, f"--ignore-certificate-errors-spki-list={_spki_hash(mgr.paths.cert)}"]
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args, timeout=30_000)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(15_000)
                code = current_claim_code(data_dir)
                assert code
                await claim(page, base, code, PASSWORD)
                await page.wait_for_url("**/admin/status")
                assert await page.evaluate("window.isSecureContext") is True
                tracks = await page.evaluate(
                    "navigator.mediaDevices.getUserMedia({video: true, audio: true})"
                    ".then(s => s.getTracks().length)"
                )
                assert tracks == 2  # camera and microphone allowed: a secure context
                cookie = next(c for c in await page.context.cookies() if c["name"] == "edge_admin")
                assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
                await page.goto(base + "/admin/tls")
                await snap(page, "tls-https")
                names = await page.locator("dl.facts").inner_text()
                assert lan in names and "unit.local" in names
            finally:
                await browser.close()
