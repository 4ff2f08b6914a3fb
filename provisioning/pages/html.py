"""Escaping helpers: every value that reaches a page goes through one of these."""

from __future__ import annotations

import html


def e(value: object) -> str:
    """Escape text for element content."""
    return html.escape(str(value), quote=True)


def attr(value: object) -> str:
    """Escape text for a double-quoted attribute value."""
    return html.escape(str(value), quote=True)


def safe_filename(name: str, suffix: str) -> str:
    """A download file name built only from safe characters (no paths, no quotes)."""
    stem = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in name)
    return (stem.strip("-")[:48] or "edge-appliance") + suffix
