"""The recordings page's body: one list of recordings and compositions."""

from __future__ import annotations

from collections.abc import Sequence

from ..backend import MediaInfo
from .html import attr, e
from .layout import Chrome, post_form


def _size(size: int) -> str:
    if size >= 1024**2:
        return f"{size / 1024**2:.1f} MB"
    return f"{size / 1024:.0f} KB"


def _item(chrome: Chrome, item: MediaInfo) -> str:
    duration = f", {item.duration} s" if item.duration is not None else ""
    facts = f"{item.status}{duration}, {_size(item.size)}, {item.created}"
    actions = ""
    if item.url:
        actions += (
            f'<a class="button" href="{attr(item.url)}" target="_blank" rel="noopener">Play</a> '
            f'<a class="button" href="{attr(item.url)}" download>Download</a> '
        )
    if item.status in ("completed", "failed"):
        actions += post_form(
            chrome,
            "recordings/delete",
            f'<input type="hidden" name="sid" value="{attr(item.sid)}">'
            '<button type="submit" class="danger">Delete</button>',
            cls="inline",
            extra=' data-confirm="Delete this file? It cannot be brought back."',
        )
    return (
        f'<li data-media="{attr(item.sid)}"><span><strong>{e(item.title)}</strong> '
        f'<span class="muted">{e(item.kind)} in {e(item.room)}: {e(facts)}</span></span>'
        f"<span>{actions}</span></li>"
    )


def media_list(chrome: Chrome, items: Sequence[MediaInfo]) -> str:
    """Every recording and composition, newest first, with play, download and delete."""
    if not items:
        listing = '<p class="muted">Nothing has been recorded yet.</p>'
    else:
        listing = f'<ul class="items" id="media">{"".join(_item(chrome, i) for i in items)}</ul>'
    return (
        '<section class="card" id="recordings"><h2>Recordings and compositions</h2>'
        '<p class="muted">Each recorded track is a file of its own (mka: audio, mkv: video); '
        "compositions put a room together. Links are valid for ten minutes.</p>"
        f"{listing}</section>"
    )
