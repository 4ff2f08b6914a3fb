"""Handlers of the HTTPS page and the system page (export, import, factory reset)."""

from __future__ import annotations

import asyncio
import logging
import tomllib
from collections.abc import Iterable, Sequence
from typing import Any

import tomli_w
from aiohttp import web
from yarl import URL

from . import tls
from .app import MAX_UPLOAD_BYTES, SESSION, chrome_for, clear_session_cookie, ctx_of, render
from .backend import FieldSpec
from .claim import new_claim_code
from .errors import CertificateRejected
from .pages import admin_pages
from .pages.html import safe_filename
from .pages.layout import Flash
from .settings_form import check_settings, spec_for, strip_secrets, with_saved_values

log = logging.getLogger("provisioning")
#: Problems listed after a refused import (a file of garbage would otherwise make a huge page).
MAX_LISTED = 100


def _upload(form: Any, name: str, limit: int) -> bytes | None:
    """The bytes of an uploaded file field; its client-side file name is never used."""
    field = form.get(name)
    if not isinstance(field, web.FileField):
        return None
    data = field.file.read(limit + 1)
    if len(data) > limit:
        raise CertificateRejected("The file is too large.")
    return bytes(data)


def _tls_paths(request: web.Request) -> tls.TlsPaths:
    ctx = ctx_of(request)
    return ctx.tls.paths if ctx.tls is not None else tls.current_paths(ctx.data_dir)


async def ca_download(request: web.Request) -> web.StreamResponse:
    """The CA certificate (public: it is needed before trusting the sign-in page)."""
    ctx = ctx_of(request)
    path = _tls_paths(request).ca_cert
    if not path.is_file():
        why = "HTTPS is off on this unit" if ctx.tls is None else "none has been made yet"
        raise web.HTTPNotFound(text=f"This unit has no CA certificate: {why}.")
    name = safe_filename(ctx.unit_name(), "-ca.crt")
    return web.Response(
        body=path.read_bytes(),
        content_type="application/x-x509-ca-cert",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _tls_page(
    request: web.Request, error: str = "", flashes: list[Flash] | None = None, status: int = 200
) -> web.Response:
    ctx = ctx_of(request)
    paths = _tls_paths(request)
    serving = ctx.tls is not None
    facts = tls.describe(paths.cert) if serving or paths.custom else {}
    ca = tls.ca_fingerprint(ctx.data_dir) if serving else ""
    if ca:
        facts["CA SHA-256"] = ca
    chrome = chrome_for(request, "tls")
    body = admin_pages.tls_body(
        chrome,
        facts,
        paths.custom,
        error,
        serving=serving,
        pending=ctx.backend.address_after_restart().tls != serving,
        ca_fingerprint=ca,
    )
    return render(request, "HTTPS", body, chrome=chrome, flashes=flashes or [], status=status)


async def health(request: web.Request) -> web.StreamResponse:
    """Whether the unit answers, and which start of it (public, readable from any origin: the
    restart page asks it across a change of address)."""
    body = {"ok": True, "boot": ctx_of(request).boot}
    return web.json_response(body, headers={"Access-Control-Allow-Origin": "*"})


def next_admin_url(request: web.Request) -> tuple[str, str]:
    """The admin pages' URL after a restart and, when it differs from this one, why."""
    ctx = ctx_of(request)
    address = ctx.backend.address_after_restart()
    if address.public_url:
        target = URL(address.public_url.rstrip("/") + ctx.base + "/")
    else:
        port = address.port or request.url.port
        scheme = "https" if address.tls else "http"
        target = URL.build(scheme=scheme, host=request.url.host or "localhost", port=port)
        target = target.with_path(ctx.base + "/")
    here = request.url.with_path(ctx.base + "/").with_query(None)
    if str(target.origin()) == str(here.origin()):
        return str(target), ""
    if target.scheme != here.scheme:
        turned = "on" if target.scheme == "https" else "off"
        return str(target), f"HTTPS is now {turned}, so the address changes."
    return str(target), "The address changes with the saved settings."


async def tls_get(request: web.Request) -> web.StreamResponse:
    """The HTTPS page."""
    return _tls_page(request)


async def tls_upload(request: web.Request) -> web.StreamResponse:
    """Validate and install an uploaded certificate and key."""
    ctx = ctx_of(request)
    form = await request.post()
    try:
        cert = _upload(form, "cert", tls.MAX_UPLOAD_BYTES)
        key = _upload(form, "key", tls.MAX_UPLOAD_BYTES)
        if not cert or not key:
            raise CertificateRejected("Choose both a certificate file and a key file.")
        async with ctx.lock:
            if ctx.tls is not None:
                await asyncio.to_thread(ctx.tls.install_custom, cert, key)
            else:
                await asyncio.to_thread(tls.install_custom, ctx.data_dir, cert, key)
    except CertificateRejected as exc:
        return _tls_page(request, error=str(exc), status=400)
    return _tls_page(request, flashes=[Flash("ok", "Certificate installed.")])


async def tls_remove(request: web.Request) -> web.StreamResponse:
    """Go back to the unit's own certificate."""
    ctx = ctx_of(request)
    async with ctx.lock:
        if ctx.tls is not None:
            await asyncio.to_thread(ctx.tls.remove_custom)
        else:
            tls.remove_custom(ctx.data_dir)
    return _tls_page(request, flashes=[Flash("ok", "Using the unit's own certificate.")])


def _system_page(
    request: web.Request,
    errors: dict[str, str] | None = None,
    flashes: list[Flash] | None = None,
    status: int = 200,
    imported: admin_pages.ImportReport | None = None,
) -> web.Response:
    ctx = ctx_of(request)
    chrome = chrome_for(request, "system")
    body = admin_pages.system_body(chrome, ctx.unit_name(), errors or {}, imported)
    return render(request, "System", body, chrome=chrome, flashes=flashes or [], status=status)


def _named(specs: Sequence[FieldSpec], paths: Iterable[str]) -> list[tuple[str, str]]:
    """(where on the settings page, config key) for each path, in the settings page's order.

    A list item (``media.stun_servers.0``) is named after its setting; a key the page does
    not know (a typo in the file) is named by itself.
    """
    order = {spec.path: i for i, spec in enumerate(specs)}
    named: list[tuple[int, str, str]] = []
    for path in paths:
        spec = spec_for(specs, path)
        where = f"{spec.section}: {spec.label}" if spec is not None else ""
        named.append((order[spec.path] if spec else len(order), where, path))
    return [(where, path) for _, where, path in sorted(named)]


async def system_get(request: web.Request) -> web.StreamResponse:
    """Export, import and factory reset."""
    return _system_page(request)


async def export(request: web.Request) -> web.StreamResponse:
    """Download the config as TOML; secrets only when asked for."""
    ctx = ctx_of(request)
    form = await request.post()
    include = form.get("include_secrets") == "on"
    data = ctx.backend.export_config(include)
    if not include:
        # The backend already leaves them out; this makes sure for every schema secret.
        data = strip_secrets(ctx.backend.settings_schema(), data)
    name = safe_filename(ctx.unit_name(), "-config.toml")
    return web.Response(
        text=tomli_w.dumps(data),
        content_type="application/toml",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def import_(request: web.Request) -> web.StreamResponse:
    """Check an uploaded config completely, then replace the current one."""
    ctx = ctx_of(request)
    form = await request.post()
    try:
        raw = _upload(form, "config", MAX_UPLOAD_BYTES)
    except CertificateRejected:
        limit = f"the limit is {MAX_UPLOAD_BYTES // 1024} KiB"
        return _system_page(request, {"config": f"The file is too large ({limit})."}, status=400)
    if not raw:
        return _system_page(request, {"config": "Choose a configuration file."}, status=400)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        why = str(exc) if isinstance(exc, tomllib.TOMLDecodeError) else "not UTF-8 text"
        return _system_page(request, {"config": f"This is not a TOML file ({why})."}, status=400)
    async with ctx.lock:
        specs = ctx.backend.settings_schema()
        # Both checks always run, so one upload lists every problem the file has. The backend
        # judges the file with the values the page refused put back to their saved ones.
        errors = check_settings(specs, data)
        typed = with_saved_values(specs, data, ctx.backend.load_settings(), errors)
        for path, message in ctx.backend.validate_settings(typed).items():
            errors.setdefault(path, message)
        if errors:
            problems = [(where, path, errors[path]) for where, path in _named(specs, errors)][
                :MAX_LISTED
            ]
            count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
            return _system_page(
                request,
                {"config": f"Nothing was imported: this file has {count}, listed below."},
                status=400,
                imported=admin_pages.ImportReport(problems=problems),
            )
        result = ctx.backend.import_config(data)
    report = admin_pages.ImportReport(
        applied=_named(specs, result.applied_live), restart=_named(specs, result.needs_restart)
    )
    flashes = [Flash("ok", "Configuration imported.")]
    if result.needs_restart:
        flashes.append(Flash("warn", "Some imported settings take effect after a restart."))
    return _system_page(request, flashes=flashes, imported=report)


async def factory_reset(request: web.Request) -> web.StreamResponse:
    """Erase everything after the unit's name has been typed exactly."""
    ctx = ctx_of(request)
    form = await request.post()
    typed = form.get("confirm")
    if not isinstance(typed, str) or typed.strip() != ctx.unit_name():
        return _system_page(
            request, {"confirm": "Type the unit's name exactly to confirm."}, status=400
        )
    async with ctx.lock:
        ctx.backend.factory_reset()
        ctx.store.erase()
        tls.erase(ctx.data_dir)
        ctx.sessions.end_all()
        ctx.secret = ctx.store.session_secret()
        code = new_claim_code(ctx.data_dir)
    log.warning("Factory reset done. New claim code: %s", code)
    request.pop(SESSION, None)
    body = admin_pages.message_body(
        chrome_for(request),
        "The unit has been reset. Read the new claim code on its console to claim it again.",
        "claim",
        "Claim the unit",
    )
    response = render(request, "Factory reset", body)
    clear_session_cookie(request, response)
    return response
