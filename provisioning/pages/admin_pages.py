"""Status, settings, keys, invites, HTTPS and system pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..backend import ApiKeyInfo
from .html import attr, e
from .layout import Chrome, csrf_field, form_field, post_form


def status_body(chrome: Chrome, buttons: Sequence[str]) -> str:
    """A live-updating status page (filled in by status.js from server-sent events)."""
    sim = ""
    if buttons:
        presses = "".join(
            post_form(
                chrome,
                "status/press",
                f'<button type="submit" name="button" value="{attr(b)}">Press {e(b)}</button>',
                cls="inline",
            )
            for b in buttons
        )
        sim = (
            '<section class="card" id="sim"><h2>Simulated hardware</h2>'
            f'<p class="muted">No buttons are attached; press them here.</p>{presses}</section>'
        )
    return (
        f'<p class="muted" id="live-state">Connecting…</p>{sim}'
        f'<div id="live" data-events="{attr(chrome.base)}/status/events">'
        "<noscript>The live status needs JavaScript.</noscript></div>"
        f'<script src="{attr(chrome.base)}/static/status.js"></script>'
    )


def settings_body(chrome: Chrome, toc: str, fieldsets: str, needs_restart: bool) -> str:
    """The settings form beside its table of contents; ``toc`` and ``fieldsets`` come from
    :mod:`settings_form` (``render_toc``, ``render_form``)."""
    restart = ""
    if needs_restart:
        restart = post_form(
            chrome,
            "restart",
            "<p>Some saved changes take effect after a restart.</p>"
            '<button type="submit" id="restart">Restart now</button>',
        )
    return (
        restart + f'<div class="settings">{toc}'
        f'<form method="post" action="{attr(chrome.base)}/settings" novalidate>'
        f"{csrf_field(chrome)}{fieldsets}"
        '<div class="save-bar"><button type="submit" id="save">Save settings</button></div>'
        "</form></div>"
    )


def keys_body(
    chrome: Chrome,
    keys: Sequence[ApiKeyInfo],
    created: tuple[str, str] | None,
    error: str = "",
) -> str:
    """API keys: the new secret (once), the list with revoke buttons, and a create form."""
    shown = ""
    if created is not None:
        sid, secret = created
        shown = (
            '<section class="card" id="new-key"><h2>New key</h2>'
            "<p>Copy the secret now. It is not stored in a readable form and will not be shown "
            "again.</p>"
            f'<dl class="facts"><dt>SID</dt><dd class="mono" id="new-sid">{e(sid)}</dd>'
            f'<dt>Secret</dt><dd><span class="secret" id="new-secret">{e(secret)}</span></dd></dl>'
            "</section>"
        )
    items = "".join(
        f'<li data-sid="{attr(k.sid)}"><span><strong>{e(k.name)}</strong> '
        f'<span class="mono">{e(k.sid)}</span> <span class="muted">{e(k.created)}</span></span>'
        + post_form(
            chrome,
            "keys/revoke",
            f'<input type="hidden" name="sid" value="{attr(k.sid)}">'
            '<button type="submit" class="danger">Revoke</button>',
            cls="inline",
            extra=' data-confirm="Revoke this key? Apps using it stop working."',
        )
        + "</li>"
        for k in keys
    )
    listing = (
        f'<ul class="items" id="keys">{items}</ul>' if keys else '<p class="muted">No keys yet.</p>'
    )
    create = post_form(
        chrome,
        "keys/create",
        "<h2>Create a key</h2>"
        + form_field(
            "name",
            "Name",
            '<input type="text" id="name" name="name" maxlength="64" required '
            'aria-describedby="name-help name-err">',
            error,
            "What uses the key, e.g. the booking system.",
        )
        + '<button type="submit">Create key</button>',
    )
    return shown + f'<section class="card"><h2>Keys</h2>{listing}</section>' + create


def invite_minutes(lifetime: tuple[int, int]) -> tuple[int, int]:
    """The invite lifetime rule (seconds) as whole minutes the form accepts."""
    low, high = lifetime
    return -(-low // 60), high // 60


def _span(minutes: int) -> str:
    """A number of minutes in the largest unit that divides it: "5 minutes", "7 days"."""
    units = ((1440, "day"), (60, "hour"), (1, "minute"))
    size, unit = next((size, unit) for size, unit in units if minutes % size == 0)
    count = minutes // size
    return f"{count} {unit}" + ("" if count == 1 else "s")


def invites_body(
    chrome: Chrome,
    lifetime: tuple[int, int],
    room: str,
    errors: Mapping[str, str],
    url: str = "",
    qr_data_uri: str = "",
) -> str:
    """Invite links with a QR code; ``lifetime`` is the unit's invite lifetime rule (seconds)."""
    low, high = invite_minutes(lifetime)
    result = ""
    if url:
        result = (
            '<section class="card" id="invite"><h2>Invite link</h2>'
            f'<p><a class="mono" id="invite-url" href="{attr(url)}">{e(url)}</a></p>'
            f'<img class="qr" alt="QR code of the invite link" src="{attr(qr_data_uri)}">'
            "</section>"
        )
    form = post_form(
        chrome,
        "invites",
        form_field(
            "room",
            "Room",
            f'<input type="text" id="room" name="room" value="{attr(room)}" maxlength="64" '
            'required aria-describedby="room-help room-err">',
            errors.get("room", ""),
        )
        + form_field(
            "ttl",
            "Valid for (minutes)",
            f'<input type="number" id="ttl" name="ttl" value="60" min="{low}" max="{high}" '
            'aria-describedby="ttl-help ttl-err">',
            errors.get("ttl", ""),
            f"From {_span(low)} to {_span(high)}.",
        )
        + form_field(
            "guests",
            "Guests",
            '<input type="number" id="guests" name="guests" value="5" min="1" max="50" '
            'aria-describedby="guests-help guests-err">',
            errors.get("guests", ""),
            "How many different people the link admits (1 to 50).",
        )
        + '<button type="submit">Create invite</button>',
    )
    return result + form


def _restart_form(chrome: Chrome, text: str) -> str:
    return post_form(
        chrome,
        "restart",
        f'<p>{e(text)}</p><button type="submit" id="restart">Restart now</button>',
    )


def tls_body(
    chrome: Chrome,
    facts: Mapping[str, str],
    custom: bool,
    error: str = "",
    *,
    serving: bool = True,
    pending: bool = False,
    ca_fingerprint: str = "",
) -> str:
    """The HTTPS page. ``serving``: the pages are on HTTPS now; ``pending``: the saved settings
    turn it the other way at the next restart. Under plain HTTP nothing about a certificate in
    use or a CA to trust is offered: there is none."""
    rows = "".join(f"<dt>{e(k)}</dt><dd class='mono'>{e(v)}</dd>" for k, v in facts.items())
    if not serving:
        how = (
            _restart_form(
                chrome,
                "HTTPS is turned on in the saved settings: it starts with the "
                "next restart, and the pages move to an https:// address.",
            )
            if pending
            else f'<p>To turn it on, tick <em>HTTPS</em> on the <a href="{attr(chrome.base)}'
            '/settings">settings page</a>, save, then restart the unit.</p>'
        )
        current = (
            '<section class="card" id="tls-off"><h2>HTTPS is off</h2>'
            "<p>This unit serves its pages over plain HTTP, so no certificate is in use and "
            "there is no certificate authority to trust. Browsers give the camera and "
            "microphone only to HTTPS pages and to pages opened on the unit itself.</p>"
            f"{how}</section>"
        )
        if custom:
            current += (
                '<section class="card"><h2>Your uploaded certificate</h2>'
                f'<p>Used once HTTPS is on.</p><dl class="facts">{rows}</dl></section>'
            )
        ca = ""
    else:
        current = (
            '<section class="card"><h2>Certificate in use</h2>'
            f"<p>{'An uploaded certificate.' if custom else 'Issued by this unit&#8217;s own CA.'}"
            f'</p><dl class="facts">{rows}</dl></section>'
        )
        if pending:
            current += _restart_form(
                chrome,
                "HTTPS is turned off in the saved settings: after the next restart the pages "
                "are plain HTTP at an http:// address.",
            )
        ca = ""
        if ca_fingerprint and not custom:
            ca = (
                '<section class="card" id="trust"><h2>Trust this unit</h2>'
                f'<p><a class="button" href="{attr(chrome.base)}/ca.crt" download>Download the '
                "CA certificate</a></p><ul>"
                "<li>Windows: open the file, <em>Install Certificate</em>, store "
                "<em>Trusted Root Certification Authorities</em>.</li>"
                "<li>macOS: open it in Keychain Access, then set <em>Always Trust</em>.</li>"
                "<li>Linux (Chrome): Settings → Privacy and security → Security → Manage "
                "certificates → Authorities → Import.</li>"
                "<li>Android/iOS: install it as a CA certificate in the security settings (iOS: "
                "also enable it under About → Certificate Trust Settings).</li></ul>"
                "<p class='muted'>Check that the CA fingerprint your device shows is "
                f'<span class="mono" id="ca-fingerprint">{e(ca_fingerprint)}</span>, the one '
                "the unit also prints to its journal at start.</p></section>"
            )
    upload = post_form(
        chrome,
        "tls/upload",
        "<h2>Use your own certificate</h2>"
        + form_field(
            "cert",
            "Certificate (PEM, chain allowed)",
            '<input type="file" id="cert" name="cert" accept=".pem,.crt,.cer" '
            'aria-describedby="cert-help cert-err">',
            error,
            "" if serving else "Kept for when HTTPS is on.",
        )
        + form_field(
            "key",
            "Private key (PEM, not encrypted)",
            '<input type="file" id="key" name="key" accept=".pem,.key" '
            'aria-describedby="key-help key-err">',
        )
        + '<button type="submit">Upload</button>',
        extra=' enctype="multipart/form-data"',
    )
    back = ""
    if custom:
        back = post_form(
            chrome,
            "tls/remove",
            '<button type="submit" class="secondary">Use the unit&#8217;s own certificate</button>',
        )
    return current + ca + upload + back


def restart_body(chrome: Chrome, target: str, moved: str, health: str, boot: str) -> str:
    """The page shown while the unit restarts: where the pages will be, and a script that opens
    that address once the restarted unit answers there (``health`` tells the old unit from the
    new one by ``boot``). ``moved`` says why the address changes; empty when it does not."""
    where = (
        f"<p>{e(moved)} After the restart the admin pages are at:</p>"
        if moved
        else "<p>The admin pages come back at the same address:</p>"
    )
    return (
        f'<div class="card" id="restarting" data-target="{attr(target)}" '
        f'data-health="{attr(health)}" data-boot="{attr(boot)}">'
        f"<p>The unit is restarting.</p>{where}"
        f'<p><a class="mono" id="new-address" href="{attr(target)}">{e(target)}</a></p>'
        '<p class="muted" id="restart-state" role="status">This page opens it as soon as the '
        "unit answers there.</p>"
        f'<noscript><meta http-equiv="refresh" content="15;url={attr(target)}">'
        "<p>Open the address above in a few seconds.</p></noscript></div>"
        f'<script src="{attr(chrome.base)}/static/restart.js"></script>'
    )


@dataclass(frozen=True)
class ImportReport:
    """What an import found: every problem (where on the settings page, key, message) when
    refused, else the settings applied at once and those waiting for a restart (where, key).
    """

    problems: Sequence[tuple[str, str, str]] = ()
    applied: Sequence[tuple[str, str]] = ()
    restart: Sequence[tuple[str, str]] = ()


def _named_item(where: str, key: str, message: str = "") -> str:
    name = (
        f"<strong>{e(where)}</strong> <code>{e(key)}</code>" if where else f"<code>{e(key)}</code>"
    )
    return f"<li>{name}{': ' + e(message) if message else ''}</li>"


def _import_report(chrome: Chrome, report: ImportReport | None) -> str:
    if report is None:
        return ""
    if report.problems:
        items = "".join(_named_item(*p) for p in report.problems)
        return f'<ul class="problems" id="import-problems">{items}</ul>'
    out = ""
    if report.applied:
        items = "".join(_named_item(*n) for n in report.applied)
        out += f'<h3>Applied now</h3><ul id="import-applied">{items}</ul>'
    if report.restart:
        items = "".join(_named_item(*n) for n in report.restart)
        out += f'<h3>Take effect after a restart</h3><ul id="import-restart">{items}</ul>'
        out += post_form(
            chrome, "restart", '<button type="submit" id="restart">Restart now</button>', cls=""
        )
    if not out:
        out = "<p>The imported file matches the settings in force; nothing changed.</p>"
    return f'<section class="card" id="import-result"><h2>Imported</h2>{out}</section>'


def system_body(
    chrome: Chrome,
    unit_name: str,
    errors: Mapping[str, str],
    imported: ImportReport | None = None,
) -> str:
    """Export, import (with what the last import found) and factory reset."""
    export = post_form(
        chrome,
        "system/export",
        "<h2>Export the configuration</h2>"
        '<div class="field"><label><input type="checkbox" name="include_secrets"> '
        "Include secrets (TURN credentials, remote room credentials)</label></div>"
        '<button type="submit">Download</button>',
    )
    imp = post_form(
        chrome,
        "system/import",
        "<h2>Import a configuration</h2>"
        + form_field(
            "config",
            "Configuration file (TOML)",
            '<input type="file" id="config" name="config" accept=".toml" '
            'aria-describedby="config-help config-err">',
            errors.get("config", ""),
            "Settings are checked before anything is saved. API keys and HTTPS are not part "
            "of a configuration file.",
        )
        + (_import_report(chrome, imported) if imported and imported.problems else "")
        + '<button type="submit">Import</button>',
        extra=' enctype="multipart/form-data"',
    )
    reset = post_form(
        chrome,
        "system/factory-reset",
        "<h2>Factory reset</h2><p>Erases the configuration, API keys, the admin password and "
        "the HTTPS certificates, then restarts the unit unclaimed.</p>"
        + form_field(
            "confirm",
            f"Type the unit name ({unit_name}) to confirm",
            '<input type="text" id="confirm" name="confirm" maxlength="128" autocomplete="off" '
            'aria-describedby="confirm-help confirm-err">',
            errors.get("confirm", ""),
        )
        + '<button type="submit" class="danger">Erase everything</button>',
    )
    done = _import_report(chrome, imported) if imported and not imported.problems else ""
    return done + export + imp + reset


def message_body(chrome: Chrome, text: str, link: str = "", link_text: str = "") -> str:
    """A short page with one message and an optional link."""
    more = f'<p><a href="{attr(chrome.base)}/{attr(link)}">{e(link_text)}</a></p>' if link else ""
    return f'<div class="card"><p>{e(text)}</p>{more}</div>'
