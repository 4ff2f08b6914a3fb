"""The status page's operator tools: state in words, self-check, camera, audio, logs, room
actions; and the list of issued invites with revoke.

Kept apart from the live overview (``admin_pages.status_body``): these sections are filled by
``status_tools.js`` from their own endpoints, and every value reaches the page as text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..backend import LOG_LEVELS, InviteInfo
from .html import attr, e
from .layout import Chrome, csrf_field, post_form


def state_section() -> str:
    """The unit's state in words, at the top of the status page (kept current by the script)."""
    return (
        '<section class="card" id="kiosk"><h2>What the unit is doing</h2>'
        '<p class="state-words" id="state-words" aria-live="polite">…</p></section>'
    )


def tools_body(chrome: Chrome) -> str:
    """The operator sections of the status page (after the live overview)."""
    base = attr(chrome.base)
    levels = "".join(
        f'<option value="{attr(level)}"{" selected" if level == "INFO" else ""}>'
        f"{e(level.capitalize())}</option>"
        for level in LOG_LEVELS
    )
    return (
        f'<link rel="stylesheet" href="{base}/static/status_tools.css">'
        f'<div id="tools" data-base="{base}" data-csrf="{attr(chrome.csrf)}">'
        # Room actions.
        '<section class="card" id="room-actions"><h2>Room actions</h2>'
        '<p class="muted" id="room-actions-note">Ending a room disconnects everyone in it; '
        "removing a participant disconnects only them.</p>"
        '<div id="room-actions-list"><p class="muted">No rooms are open.</p></div>'
        '<p id="room-actions-result" role="status"></p></section>'
        # Doctor.
        '<section class="card" id="doctor"><h2>Self-check</h2>'
        '<p class="muted">What <span class="mono">edge-appliance doctor</span> reports: which '
        "backend each part got, and why.</p>"
        '<div class="scroll"><table id="doctor-table"><thead><tr><th scope="col">Part</th>'
        '<th scope="col">OK</th><th scope="col">Backend</th><th scope="col">Why</th></tr>'
        '</thead><tbody><tr><td colspan="4" class="muted">Checking…</td></tr></tbody></table>'
        '</div><button type="button" id="doctor-run">Check again</button></section>'
        # Camera.
        '<section class="card" id="camera"><h2>Camera</h2>'
        '<p class="muted">A still of the smallest layer the call is sending now (nothing is '
        "encoded for it).</p>"
        '<p><button type="button" id="snapshot-take">Take a picture</button> '
        '<label class="inline-label">Format <select id="snapshot-format">'
        '<option value="jpeg">JPEG</option><option value="png">PNG</option></select></label></p>'
        '<p id="snapshot-note" role="status"></p>'
        '<img id="snapshot" alt="Camera still" hidden></section>'
        # Audio.
        '<section class="card" id="audio"><h2>Microphone and speaker</h2>'
        '<p>Microphone level</p><meter id="mic-meter" min="0" max="32767" low="8000" '
        'high="26000" value="0" aria-describedby="mic-note">0</meter>'
        '<p class="muted" id="mic-note" role="status">…</p>'
        f'<form method="post" action="{base}/status/speaker-test" id="speaker-form">'
        f'{csrf_field(chrome)}<button type="submit" id="speaker-test">Play a test tone</button>'
        '</form><p id="speaker-note" role="status"></p></section>'
        # Logs.
        '<section class="card" id="logs"><h2>Recent log lines</h2>'
        '<p><label class="inline-label" for="log-level">Show from</label> '
        f'<select id="log-level">{levels}</select> '
        '<button type="button" id="log-refresh">Refresh</button></p>'
        '<div class="scroll"><table id="log-table"><thead><tr><th scope="col">Time</th>'
        '<th scope="col">Level</th><th scope="col">Source</th><th scope="col">Message</th></tr>'
        "</thead><tbody></tbody></table></div>"
        '<p class="muted">Secrets (passwords, keys, tokens) are masked before a line is kept.</p>'
        "</section>"
        "</div>"
        f'<script src="{base}/static/status_tools.js"></script>'
    )


def issued_invites(chrome: Chrome, invites: Sequence[InviteInfo], now: float | None = None) -> str:
    """The invites made here and not expired, each with a Revoke button."""
    now = time.time() if now is None else now
    if not invites:
        listing = '<p class="muted">No invites are valid now.</p>'
    else:
        rows = []
        for inv in invites:
            left = max(0, int(inv.expires - now))
            expiry = f"{left // 3600} h {left % 3600 // 60} min left"
            state = "revoked" if inv.revoked else expiry
            action = ""
            if not inv.revoked:
                action = post_form(
                    chrome,
                    "invites/revoke",
                    f'<input type="hidden" name="invite_id" value="{attr(inv.invite_id)}">'
                    '<button type="submit" class="danger">Revoke</button>',
                    cls="inline",
                    extra=' data-confirm="Revoke this invite? Nobody new can join with it."',
                )
            rows.append(
                f'<li data-invite="{attr(inv.invite_id)}"><span><strong>{e(inv.room)}</strong> '
                f'<span class="muted">{e(inv.used)} of {e(inv.guests)} guests, '
                f"{e(state)}</span></span>{action}</li>"
            )
        listing = f'<ul class="items" id="issued-invites">{"".join(rows)}</ul>'
    return f'<section class="card" id="issued"><h2>Issued invites</h2>{listing}</section>'
