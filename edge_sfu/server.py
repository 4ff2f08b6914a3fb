"""The SFU's HTTP application: REST API v1, signaling, WHIP/WHEP, the join page.

``create_sfu_app(context)`` returns an ``aiohttp.web.Application`` holding ``context`` under
``SFU_CONTEXT``. Its ``cleanup_ctx`` starts the context's background work (status callback
delivery, room timeouts) when the application starts and stops it, in reverse, when it
shuts down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from .context import SFU_CONTEXT, SfuContext
from .rest import setup_rest, twilio_errors
from .signaling import setup as setup_signaling
from .signaling.twilio import setup as setup_twilio_signaling
from .signaling.whip import setup as setup_whip


def create_sfu_app(context: SfuContext) -> web.Application:
    """The SFU's application; it starts ``context`` on startup and closes it on cleanup."""
    app = web.Application(
        client_max_size=context.settings.max_body_bytes,
        middlewares=[twilio_errors],
    )
    app[SFU_CONTEXT] = context
    setup_rest(app)
    setup_signaling(app)  # /v1/signaling, /join/{room}, /static/
    setup_twilio_signaling(app)  # /twilio/signaling, /twilio/insights (twilio-video.js)
    setup_whip(app)  # /whip/{room}, /whep/{room}[/{identity}] and their sessions
    app.cleanup_ctx.append(_run_context)
    return app


async def _run_context(app: web.Application) -> AsyncIterator[None]:
    context = app[SFU_CONTEXT]
    await context.start()
    try:
        yield
    finally:
        await context.close()
