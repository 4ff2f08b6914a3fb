"""The frame every admin page shares: head, navigation, messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .html import attr, e

NAV = (
    ("status", "Status"),
    ("settings", "Settings"),
    ("keys", "API keys"),
    ("invites", "Invites"),
    ("recordings", "Recordings"),
    ("tls", "HTTPS"),
    ("system", "System"),
    ("password", "Password"),
)


@dataclass(frozen=True)
class Chrome:
    """What the frame needs to know about the request."""

    base: str  # URL prefix of the admin pages, e.g. "/admin"
    unit_name: str
    csrf: str  # token for forms on this page
    signed_in: bool
    current: str = ""


@dataclass(frozen=True)
class Flash:
    """A message at the top of a page; ``kind`` is ok, warn or error."""

    kind: str
    text: str


def csrf_field(chrome: Chrome) -> str:
    """The hidden CSRF input every form carries."""
    return f'<input type="hidden" name="csrf" value="{attr(chrome.csrf)}">'


def form_field(
    fid: str, label: str, control: str, error: str = "", help_text: str | None = ""
) -> str:
    """A labelled ``control`` with its help line (none when ``help_text`` is None) and its
    error line, which ``control`` names in ``aria-describedby`` as ``{fid}-help``/``-err``."""
    cls = "field has-error" if error else "field"
    help_line = "" if help_text is None else f'<p class="help" id="{fid}-help">{e(help_text)}</p>'
    return (
        f'<div class="{cls}"><label for="{fid}">{e(label)}</label>{control}{help_line}'
        f'<p class="error" id="{fid}-err" role="alert">{e(error)}</p></div>'
    )


def post_form(
    chrome: Chrome, action: str, inner: str, *, cls: str = "card", extra: str = ""
) -> str:
    """A POST form to the admin page ``action``, carrying the CSRF field before ``inner``."""
    return (
        f'<form method="post" action="{attr(chrome.base)}/{action}" class="{cls}"{extra}>'
        f"{csrf_field(chrome)}{inner}</form>"
    )


def page(chrome: Chrome, title: str, body: str, flashes: Sequence[Flash] = ()) -> str:
    """A whole HTML document. ``body`` must already be escaped markup."""
    nav = ""
    if chrome.signed_in:
        current = ' aria-current="page"'
        links = "".join(
            f'<a href="{attr(chrome.base)}/{key}"'
            f"{current if key == chrome.current else ''}>{e(label)}</a>"
            for key, label in NAV
        )
        nav = (
            f'<nav aria-label="Admin">{links}'
            + post_form(
                chrome,
                "logout",
                '<button type="submit" class="link">Sign out</button>',
                cls="inline",
            )
            + "</nav>"
        )
    messages = "".join(
        f'<p class="flash flash-{attr(f.kind)}" role="status">{e(f.text)}</p>' for f in flashes
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · {e(chrome.unit_name)}</title>"
        # The unit serves its icon at the root (``appliance.landing``).
        '<link rel="icon" href="/favicon.svg" type="image/svg+xml">'
        f'<link rel="stylesheet" href="{attr(chrome.base)}/static/admin.css">'
        # Helpers the pages' own scripts use; they run later, in the body.
        f'<script src="{attr(chrome.base)}/static/dom.js"></script>'
        "</head><body>"
        f'<header><span class="brand">{e(chrome.unit_name)}</span>{nav}</header>'
        f"<main><h1>{e(title)}</h1>{messages}{body}</main>"
        f'<script src="{attr(chrome.base)}/static/admin.js"></script>'
        "</body></html>"
    )
