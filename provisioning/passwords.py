"""The admin password policy and its argon2id hash.

Only the hash is stored. Hashing is deliberately slow (tens of milliseconds on a Pi), so the
async callers run it in a worker thread.
"""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .errors import WeakPassword

MIN_LENGTH = 12
MAX_LENGTH = 256  # beyond this a "password" is a denial-of-service attempt on the hasher

# A short list on purpose: the length rule already rules out most leaked passwords; these
# are the common ones that are long enough to pass it.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789abc",
        "1q2w3e4r5t6y",
        "abcdefghijkl",
        "administrator",
        "changeme1234",
        "iloveyou1234",
        "letmein12345",
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "qwerty123456",
        "qwertyuiopas",
        "qwertyuiop123",
        "raspberrypi1",
        "raspberrypi123",
        "welcome12345",
        "aaaaaaaaaaaa",
        "111111111111",
        "000000000000",
        "correcthorsebatterystaple",
    }
)

# RFC 9106's second recommended profile (argon2id, t=3, 64 MiB): affordable on a Pi with
# 512 MiB, and the hash string records the parameters so they can be raised later.
_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=2, type=Type.ID)


def normalize(password: str) -> str:
    """NFKC-normalise so the same password typed on two keyboards hashes the same."""
    return unicodedata.normalize("NFKC", password)


def check_policy(password: str, *, unit_name: str = "") -> None:
    """Raise :class:`WeakPassword` with a message an admin can act on."""
    pw = normalize(password)
    if len(pw) < MIN_LENGTH:
        raise WeakPassword(f"Use at least {MIN_LENGTH} characters.")
    if len(pw) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.")
    lowered = pw.lower()
    if lowered in COMMON_PASSWORDS:
        raise WeakPassword("This password is too common; choose another.")
    if len(set(lowered)) < 4:
        raise WeakPassword("This password repeats too few characters; choose another.")
    if unit_name and unit_name.lower() in lowered and len(lowered) - len(unit_name) < MIN_LENGTH:
        raise WeakPassword("Do not build the password from the unit's name.")


def hash_password(password: str) -> str:
    """An argon2id hash string (parameters and salt included)."""
    return _HASHER.hash(normalize(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """Constant-time check of ``password`` against ``stored_hash``; never raises on mismatch."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(stored_hash, normalize(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
