"""``POST /v1/Invites/Redeem``: a guest trades an invite link for an access token.

No API key is needed: the invite itself (signed with the unit's auth token, expiring, bound
to one room) is the credential. Form fields ``Invite`` and ``Identity`` (the name the guest
picks). One invite gives at most one token per identity (redemptions are recorded in the
store), and never an identity that is connected to the room right now, so a guest cannot
push another participant out (53205) by taking their name.
"""

from __future__ import annotations

import time

from aiohttp import web

from ..errors import TwilioError
from ..invites import verify_invite
from ..rooms.model import utcnow
from ..tokens import MAX_IDENTITY, mint_access_token
from .common import context, json_response
from .forms import Field, string
from .forms import read_form as read
from .tokens import checked_identity

FIELDS: dict[str, Field] = {
    "Invite": Field(string(2048, code=20101)),
    "Identity": Field(string(MAX_IDENTITY * 4, code=53200)),
}


class IdentityTaken(TwilioError):
    """The invite already gave this identity a token, or it is in the room now."""

    code = 53200
    status = 409


async def redeem_invite(request: web.Request) -> web.Response:
    """Verify the invite, record the redemption, and return a room-bound token."""
    form = await read(request, FIELDS)
    ctx = context(request)
    invite = verify_invite(form.get("Invite", ""), ctx.identity.auth_token)
    identity = checked_identity(form.get("Identity"))
    room = ctx.rooms.live_room_by_name(invite.room)
    if room is not None and room.by_identity(identity) is not None:
        raise IdentityTaken(f"Identity {identity!r} is already connected to this room")
    if not ctx.store.redeem(invite.invite_id, identity, invite.room, utcnow()):
        raise IdentityTaken(f"This invite already gave a token to {identity!r}")
    remaining = invite.expires_at - int(time.time())
    ttl = max(1, min(ctx.settings.invite_token_ttl, remaining))
    token = mint_access_token(
        ctx.identity.signing_key, ctx.identity.account_sid, identity, room=invite.room, ttl=ttl
    )
    body = {"token": token, "identity": identity, "room": invite.room, "ttl": ttl}
    return json_response(body, 201)


def setup(app: web.Application) -> None:
    """Add the invite route to ``app``."""
    app.router.add_post("/v1/Invites/Redeem", redeem_invite)
