"""The error root of ``provisioning`` and its subclasses.

Each subclass also subclasses the builtin it refines, so callers that only know the
builtins (``ValueError``, ``PermissionError``) still catch them, as in gpiozero's ``exc``.
"""

from __future__ import annotations


class ProvisioningError(Exception):
    """Root of every error raised by the provisioning package."""


class InvalidInput(ProvisioningError, ValueError):
    """Input from an admin (a form, an upload, a file) was rejected; ``str()`` says why."""


class CertificateRejected(InvalidInput):
    """An uploaded certificate or key is not usable (not PEM, key mismatch, expired...)."""


class WeakPassword(InvalidInput):
    """A new admin password does not meet the policy."""


class ClaimError(ProvisioningError, PermissionError):
    """The claim code was wrong, or the unit is already claimed."""


class NotClaimed(ProvisioningError, RuntimeError):
    """An operation needs an admin password but the unit has not been claimed yet."""
