"""Bad input on every field and upload: a message next to the field, never a 500, nothing saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
import tomli_w
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provisioning.backend import FieldSpec
from provisioning.settings_form import field_id, set_path
from tests.support.certs import self_signed
from tests.support.provisioning_app import get_csrf, post_form
from tests.support.provisioning_backend import SCHEMA, HandWrittenTestBackend, default_config

from .test_flows import settings_form_values

SCRIPT = "<script>alert(1)</script>"
HUGE = "9" * 100_000


def _bad_form_values(spec: FieldSpec) -> list[str]:
    values = [SCRIPT, HUGE, '"><img src=x onerror=alert(1)>']
    if spec.kind == "int":
        values += ["abc", "1.5", "1e400", "99999999999999999999999", "-99999999", "0x10", "[]"]
    elif spec.kind == "choice":
        values += ["admin", "", "../../etc/passwd"]
    elif spec.kind == "url":
        values += ["javascript:alert(1)", "file:///etc/passwd", "not a url"]
    elif spec.kind == "list":
        values += ["stun:ok.example:3478\n" + "x" * 300, "\n".join(["stun:a:1"] * 100)]
    elif spec.kind == "bool":
        values += ["yes please", "2"]
    elif spec.pattern:
        values += ["../../etc/passwd", "a" * 300]
    elif not spec.secret:
        values += ["a" * 300, "ctrl\x01char"]
    if spec.kind in ("str", "choice", "int") and spec.required:
        values.append("")
    return values


def _cases() -> list[tuple[str, str]]:
    return [(s.path, v) for s in SCHEMA for v in _bad_form_values(s)]


@pytest.fixture
async def form_page(signed_in: TestClient) -> TestClient:
    return signed_in


async def test_every_field_refuses_bad_form_input(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    client = signed_in
    before = backend.config_path.read_bytes()
    token = await get_csrf(client, "/admin/settings")
    cases = _cases()
    assert len({p for p, _ in cases}) == len(SCHEMA)  # every field is covered
    for path, bad in cases:
        form = settings_form_values(backend)
        form[path] = bad
        resp = await client.post("/admin/settings", data={"csrf": token, **form})
        text = await resp.text()
        assert resp.status == 400, (path, bad[:40], resp.status)
        assert "Something went wrong" not in text
        assert "<script>alert(1)" not in text and "<img src=x" not in text
        marker = f'id="{field_id(path)}-err" role="alert">'
        after = text.split(marker, 1)[1]
        assert not after.startswith("</p>"), (path, bad[:40], "no message next to the field")
        assert backend.config_path.read_bytes() == before, path


async def test_a_field_sent_as_a_file_is_refused(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    before = backend.config_path.read_bytes()
    token = await get_csrf(signed_in, "/admin/settings")
    for spec in SCHEMA:
        form = aiohttp.FormData()
        form.add_field("csrf", token)
        for k, v in settings_form_values(backend).items():
            if k != spec.path:
                form.add_field(k, v)
        form.add_field(spec.path, b"42", filename="../../../etc/passwd", content_type="text/plain")
        resp = await signed_in.post("/admin/settings", data=form)
        assert resp.status == 400, spec.path
        assert "Send this field as text" in await resp.text()
    assert backend.config_path.read_bytes() == before


def _wrong_typed(spec: FieldSpec) -> list[Any]:
    if spec.kind == "int":
        return ["12", 1.5, True, 10**30, [1]]
    if spec.kind == "bool":
        return ["yes", 1, None if False else {}]
    if spec.kind == "list":
        return ["stun:x:1", [1, 2], [SCRIPT]]
    return [123, True, [SCRIPT], SCRIPT, "x" * 100_000]


async def test_import_refuses_wrong_types_for_every_field(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    before = backend.config_path.read_bytes()
    for spec in SCHEMA:
        for bad in _wrong_typed(spec):
            data = default_config()
            set_path(data, spec.path, bad)
            form = aiohttp.FormData()
            form.add_field("csrf", await get_csrf(signed_in, "/admin/system"))
            form.add_field("config", tomli_w.dumps(data).encode(), filename="../../evil.toml")
            resp = await signed_in.post("/admin/system/import", data=form)
            text = await resp.text()
            assert resp.status == 400, (spec.path, repr(bad)[:40])
            assert spec.path in text and "Nothing was imported" in text
            assert "<script>alert" not in text
    assert backend.config_path.read_bytes() == before
    assert not (backend.config_path.parent.parent / "evil.toml").exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\xfe not utf8", "not UTF-8"),
        (b"this is = = not toml", "not a TOML file"),
        (b"", "Choose a configuration file"),
        (b"a = 1\n" + b"#" * 300_000, "too large"),
    ],
)
async def test_import_refuses_broken_files(
    signed_in: TestClient, backend: HandWrittenTestBackend, payload: bytes, message: str
) -> None:
    before = backend.config_path.read_bytes()
    form = aiohttp.FormData()
    form.add_field("csrf", await get_csrf(signed_in, "/admin/system"))
    form.add_field("config", payload, filename="cfg.toml")
    resp = await signed_in.post("/admin/system/import", data=form)
    assert resp.status == 400 and message in await resp.text()
    assert backend.config_path.read_bytes() == before


async def test_oversized_request_is_a_message(signed_in: TestClient) -> None:
    form = aiohttp.FormData()
    form.add_field("csrf", await get_csrf(signed_in, "/admin/system"))
    form.add_field("config", b"x" * 2_000_000, filename="big.toml")
    resp = await signed_in.post("/admin/system/import", data=form)
    assert resp.status == 413 and "too large" in await resp.text()


async def _upload_tls(
    client: TestClient, cert: bytes, key: bytes, names: tuple[str, str]
) -> tuple[ClientResponse, str]:
    """Post ``cert`` and ``key`` (uploaded under the file ``names``) to the TLS form."""
    form = aiohttp.FormData()
    form.add_field("csrf", await get_csrf(client, "/admin/tls"))
    form.add_field("cert", cert, filename=names[0])
    form.add_field("key", key, filename=names[1])
    resp = await client.post("/admin/tls/upload", data=form)
    return resp, await resp.text()


def _cert_cases() -> list[tuple[str, bytes, bytes, str]]:
    good_cert, good_key = self_signed()
    _, other_key = self_signed()
    old_cert, old_key = self_signed(days=-1, start_days=-10)
    future_cert, future_key = self_signed(days=30, start_days=5)
    enc_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    return [
        ("not a cert", b"hello, I am not a certificate", good_key, "not a PEM certificate"),
        ("png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, good_key, "not a PEM certificate"),
        (
            "garbage pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            good_key,
            "not a PEM certificate",
        ),
        ("key mismatch", good_cert, other_key, "does not match"),
        ("expired", old_cert, old_key, "expired"),
        ("not yet valid", future_cert, future_key, "not valid yet"),
        ("encrypted key", good_cert, enc_key, "encrypted"),
        ("key not a key", good_cert, b"<script>alert(1)</script>", "not a PEM private key"),
        ("missing key", good_cert, b"", "Choose both"),
    ]


@pytest.mark.parametrize(
    ("label", "cert", "key", "message"), _cert_cases(), ids=[c[0] for c in _cert_cases()]
)
async def test_tls_upload_refuses_bad_certificates(
    signed_in: TestClient, data_dir: Path, label: str, cert: bytes, key: bytes, message: str
) -> None:
    names = ("../../../../tmp/pwned.crt", "../../key.pem")
    resp, text = await _upload_tls(signed_in, cert, key, names)
    assert resp.status == 400 and message in text, label
    assert "<script>alert" not in text
    assert not (data_dir / "tls" / "custom.crt").exists()
    assert not Path("/tmp/pwned.crt").exists()


async def test_tls_upload_accepts_a_good_pair(signed_in: TestClient, data_dir: Path) -> None:
    cert, key = self_signed()
    resp, text = await _upload_tls(signed_in, cert, key, ("../../x.crt", "x.key"))
    assert resp.status == 200 and "Certificate installed" in text and "unit.example" in text
    assert (data_dir / "tls" / "custom.key").stat().st_mode & 0o777 == 0o600
    resp = await post_form(signed_in, "/admin/tls/remove", {}, "/admin/tls")
    assert resp.status == 200 and not (data_dir / "tls" / "custom.crt").exists()


@pytest.mark.parametrize("name", [SCRIPT, "", "x" * 65, HUGE, "a\x00b"])
async def test_api_key_name_refused(
    signed_in: TestClient, backend: HandWrittenTestBackend, name: str
) -> None:
    resp = await post_form(signed_in, "/admin/keys/create", {"name": name}, "/admin/keys")
    text = await resp.text()
    assert resp.status == 400 and "Use 1 to 64 characters" in text and "<script>alert" not in text
    assert backend.keys == {}


@pytest.mark.parametrize("sid", ["../../etc/passwd", SCRIPT, HUGE, ""])
async def test_revoke_bad_sid(signed_in: TestClient, sid: str) -> None:
    resp = await post_form(signed_in, "/admin/keys/revoke", {"sid": sid}, "/admin/keys")
    assert resp.status == 400 and "no such key" in await resp.text()


@pytest.mark.parametrize(
    ("room", "ttl"),
    [
        (SCRIPT, "60"),
        ("../../x", "60"),
        ("lobby", "1e9"),
        ("lobby", "-5"),
        ("lobby", HUGE),
        (HUGE, "60"),
    ],
)
async def test_invite_bad_input(signed_in: TestClient, room: str, ttl: str) -> None:
    resp = await post_form(
        signed_in, "/admin/invites", {"room": room, "ttl": ttl}, "/admin/invites"
    )
    text = await resp.text()
    assert resp.status == 400 and "<script>alert" not in text and 'id="invite"' not in text


@pytest.mark.parametrize("password", [HUGE, SCRIPT, "", "\x00" * 20])
async def test_sign_in_with_junk_is_a_message(signed_in: TestClient, password: str) -> None:
    await post_form(signed_in, "/admin/logout", {}, "/admin/status")
    resp = await post_form(signed_in, "/admin/login", {"password": password}, "/admin/login")
    assert resp.status == 401 and "Wrong password" in await resp.text()


async def test_claim_with_junk_is_a_message(client: TestClient) -> None:
    for code in (HUGE, SCRIPT, "../../admin/claim-code"):
        resp = await post_form(
            client,
            "/admin/claim",
            {"code": code, "password": "x" * 20, "confirm": "x" * 20},
            "/admin/claim",
        )
        text = await resp.text()
        assert resp.status == 400 and "not right" in text and "<script>alert" not in text


async def test_import_refuses_markup_in_keys_the_page_does_not_edit(
    signed_in: TestClient, backend: HandWrittenTestBackend
) -> None:
    before = backend.config_path.read_bytes()
    data = default_config()
    data["sfu"] = {"note": SCRIPT}
    form = aiohttp.FormData()
    form.add_field("csrf", await get_csrf(signed_in, "/admin/system"))
    form.add_field("config", tomli_w.dumps(data).encode(), filename="cfg.toml")
    resp = await signed_in.post("/admin/system/import", data=form)
    text = await resp.text()
    assert resp.status == 400 and "sfu.note" in text and "<script>alert" not in text
    assert backend.config_path.read_bytes() == before


async def test_import_limit_is_the_same_under_any_root_app(
    backend: HandWrittenTestBackend, data_dir: Path
) -> None:
    from provisioning.app import MAX_UPLOAD_BYTES
    from tests.support.provisioning_app import claim, make_app, running_client

    # The daemon mounts the admin pages on the REST API's application (64 KiB bodies).
    app, _ = make_app(backend, data_dir, client_max_size=64 * 1024)
    async with running_client(app) as client:
        await claim(client, data_dir)

        async def upload(size: int) -> aiohttp.ClientResponse:
            text = tomli_w.dumps(default_config())
            text += "#" * (size - len(text.encode()) - 1) + "\n"
            form = aiohttp.FormData()
            form.add_field("csrf", await get_csrf(client, "/admin/system"))
            form.add_field("config", text.encode(), filename="config.toml")
            return await client.post("/admin/system/import", data=form)

        resp = await upload(200 * 1024)  # over the root's 64 KiB, under the pages' limit
        assert resp.status == 200 and "Configuration imported" in await resp.text()
        # Over the limit: said next to the field, or on the error page for a huge request,
        # with the same figure the docs give.
        assert MAX_UPLOAD_BYTES == 256 * 1024  # what docs/provisioning.md says
        resp = await upload(MAX_UPLOAD_BYTES + 1024)
        assert resp.status == 400 and "the limit is 256 KiB" in await resp.text()
        resp = await upload(4 * MAX_UPLOAD_BYTES)
        assert resp.status == 413 and "the limit is 256 KiB" in await resp.text()
