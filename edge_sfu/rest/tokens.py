"""``POST /v1/Tokens``: an access token for an identity, signed with the caller's API key.

The token is signed with the very key the request authenticated with, so revoking that key
also revokes every token it obtained. The identity is recorded as issued, so no guest redeeming
an invite can take it afterwards.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import InvalidParameter, TokenError
from ..rooms.model import utcnow
from ..tokens import MAX_IDENTITY, MAX_LIFETIME, mint_access_token, validate_identity
from .auth import API_KEY, requires_key
from .common import context, json_response
from .forms import Field, integer, read_form, room_name, string

DEFAULT_TTL = 3600
FIELDS: dict[str, Field] = {
    "Identity": Field(string(MAX_IDENTITY * 4, code=53200)),
    "Room": Field(room_name),
    "Ttl": Field(integer(1, MAX_LIFETIME, code=20157)),
}


def checked_identity(identity: str | None) -> str:
    """``identity`` if Twilio would accept it as a participant identity (53200 otherwise)."""
    if identity is None:
        raise InvalidParameter("Identity is required", code=53200)
    try:
        validate_identity(identity)
    except TokenError as exc:
        raise InvalidParameter(exc.message, code=53200) from exc
    return identity


@requires_key
async def create_token(request: web.Request) -> web.Response:
    """Mint a token: form fields ``Identity`` (required), ``Room``, ``Ttl`` (seconds)."""
    form = await read_form(request, FIELDS)
    identity = checked_identity(form.get("Identity"))
    room = form.get("Room")
    ttl = form.get("Ttl", DEFAULT_TTL)
    ctx = context(request)
    token = mint_access_token(
        request[API_KEY], ctx.identity.account_sid, identity, room=room, ttl=ttl
    )
    # No guest may take a name the unit gave out this way (see ``Store.claim_guest``).
    ctx.store.record_issued(identity, utcnow())
    return json_response({"token": token, "identity": identity, "room": room, "ttl": ttl}, 201)


def setup(app: web.Application) -> None:
    """Add the token route to ``app``."""
    app.router.add_post("/v1/Tokens", create_token)
