"""Form and query parameters, parsed strictly, the way Twilio's API names them.

Requests are ``application/x-www-form-urlencoded`` (bodies) or query strings (GET). Every
parameter an endpoint does not know is refused, as is a repeated one (except the few list
parameters, like ``VideoCodecs``), a body that is not UTF-8, or a value of the wrong type:
all as ``InvalidParameter`` (HTTP 400, Twilio code 20001 unless a closer one exists).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from ..errors import InvalidParameter
from ..rooms import validate_room_name
from ..text import is_clean

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 64
MAX_VALUE = 16 * 1024

Parser = Callable[[str, str], Any]


@dataclass(frozen=True)
class Field:
    """One parameter: how to parse it, and whether it may repeat."""

    parse: Parser
    repeat: bool = False


def string(max_len: int = 256, *, code: int = 20001) -> Parser:
    """A printable string of 1 to ``max_len`` characters (see ``edge_sfu.text``)."""

    def parse(name: str, value: str) -> str:
        if not value or len(value) > max_len or not is_clean(value):
            raise InvalidParameter(f"{name} must be 1 to {max_len} printable characters", code=code)
        return value

    return parse


def integer(low: int, high: int, *, code: int = 20001) -> Parser:
    """A decimal integer in ``[low, high]``."""

    def parse(name: str, value: str) -> int:
        text = value.strip()
        if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 12:
            raise InvalidParameter(f"{name} must be an integer", code=code)
        number = int(text)
        if not low <= number <= high:
            raise InvalidParameter(f"{name} must be between {low} and {high}", code=code)
        return number

    return parse


def boolean(name: str, value: str) -> bool:
    """``true`` or ``false`` (any case), as Twilio's helper libraries send them."""
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise InvalidParameter(f"{name} must be true or false")
    return lowered == "true"


def choice(*options: str, code: int = 20001, fold: bool = False) -> Parser:
    """One of ``options`` (compared case-insensitively when ``fold``)."""

    def parse(name: str, value: str) -> str:
        for option in options:
            if value == option or (fold and value.lower() == option.lower()):
                return option
        raise InvalidParameter(f"{name} must be one of: {', '.join(options)}", code=code)

    return parse


#: What ``url`` accepts, as ``openapi.yaml`` says: a host name or IPv4 address, an optional
#: port (0 to 65535: a pattern of five digits let 76675 through the schema to be refused
#: later), and an optional path (with its query) of printable ASCII.
URL_PATTERN = re.compile(
    r"https?://[A-Za-z0-9.-]+"
    r"(:([0-9]{1,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    r"(/[!-~]*)?"
)


def url(*, code: int = 20001) -> Parser:
    """An absolute ``http`` or ``https`` URL (``URL_PATTERN``)."""

    def parse(name: str, value: str) -> str:
        if len(value) > 2048 or not URL_PATTERN.fullmatch(value):
            raise InvalidParameter(f"{name} must be an http(s) URL", code=code)
        try:
            parts = urlsplit(value)
        except ValueError as exc:
            raise InvalidParameter(f"{name} must be an http(s) URL", code=code) from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidParameter(f"{name} must be an http(s) URL", code=code)
        return value

    return parse


def timestamp(name: str, value: str) -> datetime:
    """An ISO 8601 date or date-time (UTC when no zone is given)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # Converting to UTC can leave datetime's range (0001-01-01T00:00:00+01:00).
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidParameter(f"{name} must be an ISO 8601 date-time") from exc


def room_name(name: str, value: str) -> str:
    """A room name, by the rule every room name follows (``validate_room_name``)."""
    del name  # the errors name the room name, as Twilio's do
    validate_room_name(value)
    return value


def any_text(max_len: int = MAX_VALUE) -> Parser:
    """Any text up to ``max_len`` characters (JSON documents, for instance)."""

    def parse(name: str, value: str) -> str:
        if len(value) > max_len:
            raise InvalidParameter(f"{name} is longer than {max_len} characters")
        return value

    return parse


async def read_form(request: web.Request, fields: Mapping[str, Field]) -> dict[str, Any]:
    """Parse and check the body of a POST (an empty body is an empty form)."""
    body = await request.read()
    if body and request.content_type != FORM_TYPE:
        raise InvalidParameter(f"Content-Type must be {FORM_TYPE}", status=415)
    return _check(_decode(body), fields)


def read_query(request: web.Request, fields: Mapping[str, Field]) -> dict[str, Any]:
    """Parse and check a request's query string."""
    return _check(_decode(request.rel_url.raw_query_string.encode("latin-1", "replace")), fields)


def _decode(raw: bytes) -> list[tuple[str, str]]:
    if not raw:
        return []
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameter("malformed form: expected UTF-8 key=value pairs") from exc
    for key, value in pairs:
        if len(value) > MAX_VALUE or len(key) > 64 or "\ufffd" in key + value:
            raise InvalidParameter("malformed form parameter")
    return pairs


def _check(pairs: list[tuple[str, str]], fields: Mapping[str, Field]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        spec = fields.get(key)
        if spec is None:
            raise InvalidParameter(f"Unknown parameter: {key[:64]!r}")
        parsed = spec.parse(key, value)
        if spec.repeat:
            out.setdefault(key, []).append(parsed)
        elif key in out:
            raise InvalidParameter(f"Parameter {key} given more than once")
        else:
            out[key] = parsed
    return out
