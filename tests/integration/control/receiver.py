"""A local status-callback receiver that fails its first attempts on purpose."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.waiting import wait_for


@dataclass
class Received:
    url: str
    method: str
    params: dict[str, str]
    signature: str


@dataclass
class Receiver:
    """Answers 500 to the first ``fail_first`` requests, then 204 and records them."""

    fail_first: int = 0
    attempts: int = 0
    received: list[Received] = field(default_factory=list)
    server: TestServer | None = None
    #: Every request, failed ones included: (URL, body, signature, idempotency token).
    raw: list[tuple[str, bytes, str, str]] = field(default_factory=list)

    async def start(self, port: int | None = None) -> str:
        app = web.Application()
        app.router.add_route("*", "/status", self._handle)
        self.server = TestServer(app, host="127.0.0.1", port=port)
        await self.server.start_server(shutdown_timeout=1.0)
        return str(self.server.make_url("/status"))

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        headers = request.headers
        self.raw.append(
            (
                str(request.url),
                await request.read(),
                headers.get("X-Twilio-Signature", ""),
                headers.get("I-Twilio-Idempotency-Token", ""),
            )
        )
        if self.attempts <= self.fail_first:
            return web.Response(status=500)
        form = await request.post()
        params = {k: str(v) for k, v in form.items()} if request.method == "POST" else {}
        self.received.append(
            Received(
                str(request.url),
                request.method,
                params,
                request.headers.get("X-Twilio-Signature", ""),
            )
        )
        return web.Response(status=204)

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        await wait_for(
            lambda: len(self.received) >= count, timeout=timeout, what=f"{count} callbacks"
        )
