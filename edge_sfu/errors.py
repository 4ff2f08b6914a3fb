"""Errors of the SFU, carrying Twilio's error codes so clients written for Twilio understand them.

One root (``SfuError``); each subclass also subclasses the matching builtin, as gpiozero does,
so callers can catch either. ``TwilioError`` renders as Twilio's error JSON:
``{"code", "message", "more_info", "status"}``.
"""

from __future__ import annotations

from typing import Any

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"


class SfuError(Exception):
    """Root of every error raised by ``edge_sfu``."""


class TwilioError(SfuError):
    """An error with a Twilio error code and the HTTP status it maps to."""

    code: int = 20001
    status: int = 400

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __init_subclass__(
        cls, *, code: int | None = None, status: int | None = None, **kwargs: Any
    ) -> None:
        """Let a subclass name its defaults in its header: ``class X(TwilioError, code=…)``."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status

    def to_json(self) -> dict[str, Any]:
        """Twilio's error body."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }


class InvalidParameter(TwilioError, ValueError, code=20001, status=400):
    """A request parameter is missing or has a wrong value (Twilio 20001 / 53xxx)."""


class NotFound(TwilioError, LookupError, code=20404, status=404):
    """The requested resource does not exist (Twilio 20404)."""


class AuthenticationError(TwilioError, PermissionError, code=20003, status=401):
    """Credentials are missing or wrong (Twilio 20003)."""


class TokenError(TwilioError, PermissionError, code=20101, status=401):
    """An access token was refused; ``code`` says why (Twilio 201xx)."""


class RoomError(TwilioError, RuntimeError, code=53100, status=400):
    """A room refuses an operation (Twilio 531xx, e.g. 53105 room full, 53118 room completed)."""
