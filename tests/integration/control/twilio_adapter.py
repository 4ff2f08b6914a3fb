"""The one hand-written adapter: a twilio-python ``HttpClient`` that sends requests meant
for ``https://video.twilio.com`` to a local unit instead, unchanged otherwise."""

from __future__ import annotations

from typing import Any

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

TWILIO_VIDEO = "https://video.twilio.com"


class LocalVideoHttpClient(TwilioHttpClient):
    """Rewrites ``https://video.twilio.com`` to ``base`` (e.g. ``http://127.0.0.1:40123``)."""

    def __init__(self, base: str) -> None:
        super().__init__(timeout=10)
        self.base = base.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(TWILIO_VIDEO):
            url = self.base + url[len(TWILIO_VIDEO) :]
        return super().request(method, url, *args, **kwargs)
