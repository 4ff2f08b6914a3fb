"""The SFU's HTTP application: REST API v1 today, plus whatever other parts mount on it.

``create_sfu_app(context)`` returns an ``aiohttp.web.Application`` holding ``context`` under
``SFU_CONTEXT``. Its ``cleanup_ctx`` starts the context's background work (status callback
delivery, room timeouts) when the application starts and stops it, in reverse, when it
shuts down. Other parts of ``edge_sfu`` (signaling, the join page) add their routes through
``route_hooks``: each hook is called with the application before it is returned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

from aiohttp import web

from .context import SFU_CONTEXT, SfuContext
from .rest import setup_rest, twilio_errors
from .signaling import setup as setup_signaling

RouteHook = Callable[[web.Application], None]


def create_sfu_app(
    context: SfuContext,
    *,
    route_hooks: Iterable[RouteHook] = (),
    manage_context: bool = True,
) -> web.Application:
    """The SFU's application.

    ``route_hooks`` add further routes (e.g. ``edge_sfu.signaling``'s ``setup``).
    With ``manage_context`` (the default) the application starts ``context`` on startup and
    closes it on cleanup; pass False when the caller owns the context's lifetime.
    """
    app = web.Application(
        client_max_size=context.settings.max_body_bytes,
        middlewares=[twilio_errors],
    )
    app[SFU_CONTEXT] = context
    setup_rest(app)
    setup_signaling(app)  # /v1/signaling, /join/{room}, /static/
    for hook in route_hooks:
        hook(app)
    if manage_context:
        app.cleanup_ctx.append(_run_context)
    return app


async def _run_context(app: web.Application) -> AsyncIterator[None]:
    context = app[SFU_CONTEXT]
    await context.start()
    try:
        yield
    finally:
        await context.close()
