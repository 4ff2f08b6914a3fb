"""CSRF tokens for every form.

Signed-in forms carry ``HMAC(secret, "s:" + session key)``; the claim and sign-in forms
(before there is a session) carry ``HMAC(secret, "p:" + pre-session cookie)``, a random
cookie set with the form. A cross-site page can neither read the cookie nor compute the
HMAC, and ``SameSite=Strict`` keeps the cookie off its requests anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

FIELD = "csrf"
PRE_COOKIE = "edge_admin_pre"


def new_pre_session_id() -> str:
    """A random value for the pre-session cookie."""
    return secrets.token_urlsafe(24)


def token_for(secret: bytes, binding: str) -> str:
    """The token a form must carry for ``binding`` (``"s:<key>"`` or ``"p:<cookie>"``)."""
    return hmac.new(secret, binding.encode(), hashlib.sha256).hexdigest()


def check(secret: bytes, binding: str, presented: object) -> bool:
    """Constant-time check of a posted token; anything but a string of the right shape fails."""
    if not isinstance(presented, str) or len(presented) != 64:
        return False
    return hmac.compare_digest(token_for(secret, binding).encode(), presented.encode())
