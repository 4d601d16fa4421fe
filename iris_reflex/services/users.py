"""Accounts: registration rules and lookups by username (case-insensitive)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from iris_reflex import clock
from iris_reflex.errors import Conflict, Invalid, NotFound
from iris_reflex.models import User
from iris_reflex.services import limits, passwords

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.]{3,32}$")
PASSWORD_MIN = 8
# argon2 hashes any length, but an unbounded password is a cheap way to burn server CPU.
PASSWORD_MAX = 128
# The columns decide: a limit written here could drift from the schema.
DISPLAY_NAME_MAX = User.__table__.c.display_name.type.length  # type: ignore[attr-defined]
STATUS_MESSAGE_MAX = User.__table__.c.status_message.type.length  # type: ignore[attr-defined]

NO_SUCH_USER = "No user with that username."


def avatar_version(key: str | None) -> str | None:
    """A short fingerprint of the stored picture, for URLs that change when it changes
    (the storage key itself never leaves the server)."""
    if not key:
        return None
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class PublicUser:
    """What anyone may see of a user: never the hash, never settings."""

    id: int
    username: str
    display_name: str
    status_message: str = ""
    # Changes with each new picture; the picture itself is served only to friends.
    avatar_version: str | None = None

    @classmethod
    def of(cls, user: User) -> PublicUser:
        assert user.id is not None
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            status_message=user.status_message,
            avatar_version=avatar_version(user.avatar_key),
        )


@dataclass(frozen=True)
class Me:
    """The signed-in user's own view of their account."""

    id: int
    username: str
    display_name: str
    status_message: str
    theme: str
    read_receipts: bool
    created_at: datetime
    avatar_version: str | None = None

    @classmethod
    def of(cls, user: User) -> Me:
        assert user.id is not None
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            status_message=user.status_message,
            theme=user.theme,
            read_receipts=user.read_receipts,
            created_at=user.created_at,
            avatar_version=avatar_version(user.avatar_key),
        )


def username_key(username: str) -> str:
    """The case-insensitive identity of a username.

    NUL and lone surrogates, which no username contains and which PostgreSQL (NUL) or the
    driver (surrogates) cannot even compare, become U+FFFD: a lookup finds nobody instead of
    failing, and a failed login is still counted.
    """
    key = username.strip().casefold()
    if key.isascii() and "\x00" not in key:
        return key
    return "".join("\ufffd" if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in key)


def validate_username(username: str) -> str:
    """The username as typed (surrounding spaces removed), or ``Invalid``."""
    username = username.strip()
    if not USERNAME_PATTERN.fullmatch(username):
        raise Invalid("A username has 3 to 32 characters: letters, digits, '_' and '.' only.")
    return username


def is_text(value: str) -> bool:
    """Whether a string can be stored and hashed: no lone surrogates (JSON allows
    ``"\ud800"``, UTF-8 does not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_password(password: str) -> str:
    """The password unchanged, or ``Invalid`` when it is too short, too long or not text."""
    if not is_text(password):
        raise Invalid("A password must be text (it contains an invalid character).")
    if len(password) < PASSWORD_MIN:
        raise Invalid(f"A password needs at least {PASSWORD_MIN} characters.")
    if len(password) > PASSWORD_MAX:
        raise Invalid(f"A password can have at most {PASSWORD_MAX} characters.")
    return password


def check_register(session: Session, *, username: str, password: str, ip: str) -> User:
    """Create an account after checking every rule; nothing is written when one fails.

    ``ip`` is the client's address (``addresses.client_address``); registrations are
    limited per address (an empty one counts as ``unknown``, one bucket for all).

    Raises:
        Throttled: more registration attempts from this address than ``limits.registrations``.
        Invalid: bad username or password.
        Conflict: the username is taken, in any letter case.
    """
    limits.hit(session, limits.registrations(), ip)
    username = validate_username(username)
    validate_password(password)
    key = username_key(username)
    taken = Conflict("That username is taken.")
    if session.exec(select(User.id).where(User.username_key == key)).first() is not None:
        raise taken
    user = User(
        username=username,
        username_key=key,
        display_name=username,
        password_hash=passwords.hash_password(password),
        created_at=clock.now(),
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        # Two registrations raced past the check above; the unique index decides.
        session.rollback()
        raise taken from None
    session.refresh(user)
    return user


def get_by_username(session: Session, username: str) -> User | None:
    """The user with this username in any letter case, or ``None``."""
    return session.exec(select(User).where(User.username_key == username_key(username))).first()


def require_id(session: Session, username: str, message: str = NO_SUCH_USER) -> int:
    """The id of the user with this username (any letter case), or ``NotFound(message)``."""
    user = get_by_username(session, username)
    if user is None or user.id is None:
        raise NotFound(message)
    return user.id


def access_user(session: Session, user_id: int) -> User:
    """The user with this id, or ``NotFound``."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def touch_last_seen(session: Session, *, user_id: int) -> None:
    """Record that the user was here just now (presence's "last seen")."""
    user = session.get(User, user_id)
    if user is not None:
        user.last_seen_at = clock.now()
        session.add(user)
        session.commit()


def set_read_receipts(session: Session, *, actor_id: int, enabled: bool) -> None:
    """Turn read receipts on or off; off also hides others' receipts (as in Signal)."""
    user = access_user(session, actor_id)
    user.read_receipts = bool(enabled)
    session.add(user)
    session.commit()


def _profile_text(value: str, *, what: str, least: int, most: int) -> str:
    """``value`` trimmed, or ``Invalid`` when its length is out of range or it has control
    characters (newlines, NUL: PostgreSQL cannot store NUL) or lone surrogates."""
    text = value.strip()
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise Invalid(f"A {what} cannot contain control characters or line breaks.")
    if len(text) < least:
        raise Invalid(f"A {what} cannot be empty.")
    if len(text) > most:
        raise Invalid(f"A {what} can have at most {most} characters.")
    return text


def update_profile(
    session: Session,
    *,
    actor_id: int,
    display_name: str | None = None,
    status_message: str | None = None,
) -> Me:
    """Change the actor's display name and/or status message (``None`` leaves one as is).

    Both are trimmed; a display name has 1 to 64 characters, a status 0 to 140; neither may
    contain control characters. Nothing is written when either is refused.

    Raises:
        Invalid: a value breaks one of those rules.
        NotFound: no such user.
    """
    name = (
        None
        if display_name is None
        else _profile_text(display_name, what="display name", least=1, most=DISPLAY_NAME_MAX)
    )
    status = (
        None
        if status_message is None
        else _profile_text(status_message, what="status", least=0, most=STATUS_MESSAGE_MAX)
    )
    user = access_user(session, actor_id)
    if name is not None:
        user.display_name = name
    if status is not None:
        user.status_message = status
    session.add(user)
    session.commit()
    session.refresh(user)
    return Me.of(user)
