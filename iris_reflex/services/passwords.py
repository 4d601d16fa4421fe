"""Password hashing with passlib's argon2 scheme.

argon2 (not bcrypt: passlib's bcrypt backend crashes with bcrypt 5). ``verify_and_update``
lets a future change of parameters rehash old hashes at the next login. ``DUMMY_HASH`` is
verified when a username does not exist, so a login takes as long for a missing user as for
a wrong password and response times do not reveal who has an account.
"""

from __future__ import annotations

from passlib.context import CryptContext

_context = CryptContext(schemes=["argon2"], deprecated="auto")

DUMMY_HASH = _context.hash("iris-dummy-password-for-timing")


def hash_password(password: str) -> str:
    """A new argon2 hash of ``password``."""
    return _context.hash(password)


def verify(password: str, password_hash: str) -> tuple[bool, str | None]:
    """Whether ``password`` matches, and a replacement hash when parameters changed."""
    return _context.verify_and_update(password, password_hash)
