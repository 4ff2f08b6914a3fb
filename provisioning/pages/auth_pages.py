"""Claim, sign-in and password pages."""

from __future__ import annotations

from ..passwords import MIN_LENGTH
from .html import attr, e
from .layout import Chrome, form_field, post_form


def _pw(fid: str, name: str, label: str, error: str = "", auto: str = "new-password") -> str:
    control = (
        f'<input type="password" id="{fid}" name="{attr(name)}" autocomplete="{auto}" '
        f'maxlength="256" required aria-describedby="{fid}-err">'
    )
    return form_field(fid, label, control, error, help_text=None)


def _new_password(errors: dict[str, str], label: str, confirm_label: str) -> str:
    """The new password and its confirmation, with the minimum length in the label."""
    return _pw(
        "password",
        "password",
        f"{label} (at least {MIN_LENGTH} characters)",
        errors.get("password", ""),
    ) + _pw("confirm", "confirm", confirm_label, errors.get("confirm", ""))


def claim_body(chrome: Chrome, errors: dict[str, str], code: str = "") -> str:
    """The first-start page: claim code and a new admin password."""
    return (
        "<p>This unit has no admin yet. Enter the claim code shown on its console "
        "(<code>edge-appliance claim-code</code>, or the system journal) and choose the "
        "admin password.</p>"
    ) + post_form(
        chrome,
        "claim",
        form_field(
            "code",
            "Claim code",
            f'<input type="text" id="code" name="code" value="{attr(code)}" maxlength="64" '
            'autocomplete="off" autocapitalize="characters" spellcheck="false" required '
            'aria-describedby="code-err">',
            errors.get("code", ""),
            help_text=None,
        )
        + _new_password(errors, "New admin password", "Repeat the password")
        + '<button type="submit">Claim this unit</button>',
    )


def login_body(chrome: Chrome, error: str = "", locked_s: float = 0) -> str:
    """The sign-in page; while locked out it explains why and for how long."""
    if locked_s > 0:
        minutes, seconds = divmod(int(locked_s + 0.999), 60)
        wait = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        return (
            '<div class="card" id="lockout"><p><strong>Sign-in is locked for this address.</strong>'
            f" Too many wrong passwords were tried. Try again in {e(wait)}.</p>"
            "<p>Each further lockout lasts twice as long. If you have forgotten the password, "
            "on the unit's own console run <code>sudo edge-appliance admin reset-password</code>: "
            "it prints a new claim code, which lets you set a new password here.</p></div>"
        )
    return (
        post_form(
            chrome,
            "login",
            _pw("password", "password", "Admin password", error, auto="current-password")
            + '<button type="submit">Sign in</button>',
        )
        + '<p class="muted">Forgotten the password? Run '
        "<code>sudo edge-appliance admin reset-password</code> on the unit's console.</p>"
    )


def password_body(chrome: Chrome, errors: dict[str, str]) -> str:
    """Change the admin password (signs out every other browser)."""
    return post_form(
        chrome,
        "password",
        _pw(
            "current",
            "current",
            "Current password",
            errors.get("current", ""),
            auto="current-password",
        )
        + _new_password(errors, "New password", "Repeat the new password")
        + '<p class="help">Changing the password signs out every browser.</p>'
        '<button type="submit">Change password</button>',
    )
