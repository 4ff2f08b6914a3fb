"""``POST /v1/Invites/Redeem``: a guest trades an invite link for an access token.

No API key is needed: the invite itself (signed with the unit's auth token, expiring, bound
to one room, admitting a limited number of guests) is the credential. Form fields ``Invite``,
``Identity`` (the name the guest picks) and ``GuestKey`` (optional: the secret of the guest
that already holds this name). A guest name is bound to its guest key: the browser that
redeemed it may redeem it again with that key, nobody else can take it, and no guest gets a
name the unit issued or saw otherwise, or one connected to the room right now, so a guest
cannot push another participant out (53205) by taking their name.
"""

from __future__ import annotations

import time

from aiohttp import web

from ..errors import InvalidParameter, TwilioError
from ..invites import guest_key_hash, is_guest_key, new_guest_key, verify_invite
from ..rooms.model import utcnow
from ..store import GuestClaim, GuestResult
from ..tokens import MAX_IDENTITY, mint_access_token
from .common import context, json_response
from .forms import Field, any_text, string
from .forms import read_form as read
from .tokens import checked_identity

FIELDS: dict[str, Field] = {
    # Checked by ``verify_invite``: an empty or garbled invite is no credential (401 20101).
    "Invite": Field(any_text(4096)),
    "Identity": Field(string(MAX_IDENTITY * 4, code=53200)),
    "GuestKey": Field(string(128, code=20001)),
}


class IdentityTaken(TwilioError, code=53200, status=409):
    """Another guest holds this name, it was issued otherwise, or it is in the room now."""


class InviteRevoked(TwilioError, code=20110, status=401):
    """The unit's admin revoked the invite."""


class InviteFull(TwilioError, code=53105, status=403):
    """The invite admitted as many guests as its creator allowed."""


_REFUSALS: dict[GuestResult, TwilioError] = {
    GuestResult.TAKEN: IdentityTaken("Another guest holds this identity"),
    GuestResult.RESERVED: IdentityTaken("This identity is not available to guests"),
    GuestResult.FULL: InviteFull("This invite admitted as many guests as it may"),
}


async def redeem_invite(request: web.Request) -> web.Response:
    """Verify the invite, claim the guest name, and return a room-bound token."""
    form = await read(request, FIELDS)
    ctx = context(request)
    invite = verify_invite(form.get("Invite", ""), ctx.identity.auth_token)
    if ctx.store.invite_revoked(invite.invite_id):
        raise InviteRevoked("Invite revoked")
    identity = checked_identity(form.get("Identity"))
    key = form.get("GuestKey") or new_guest_key()
    if not is_guest_key(key):
        raise InvalidParameter("GuestKey must be 32 to 128 characters of A-Z a-z 0-9 _ -")
    key_hash, now = guest_key_hash(key), utcnow()
    room = ctx.rooms.live_room_by_name(invite.room)
    connected = room is not None and room.by_identity(identity) is not None
    # Only the guest holding the name may take it while it is connected (a reload of the
    # same browser replaces its own earlier connection); nobody else pushes anyone out.
    if connected and not ctx.store.holds_guest_name(identity, key_hash, now):
        raise IdentityTaken(f"Identity {identity!r} is already connected to this room")
    remaining = invite.expires_at - int(time.time())
    ttl = max(1, min(ctx.settings.invite_token_ttl, remaining))
    claim = GuestClaim(
        identity=identity,
        key_hash=key_hash,
        invite_id=invite.invite_id,
        room=invite.room,
        limit=invite.guests,
        expires=invite.expires_at + ctx.settings.invite_token_ttl,
    )
    result = ctx.store.claim_guest(claim, now)
    if result in _REFUSALS:
        raise _REFUSALS[result]
    token = mint_access_token(
        ctx.identity.signing_key, ctx.identity.account_sid, identity, room=invite.room, ttl=ttl
    )
    body = {"token": token, "identity": identity, "room": invite.room, "ttl": ttl, "guestKey": key}
    return json_response(body, 201)


def setup(app: web.Application) -> None:
    """Add the invite route to ``app``."""
    app.router.add_post("/v1/Invites/Redeem", redeem_invite)
