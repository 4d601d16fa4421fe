"""Sign-in, tokens and sessions.

Why it is built this way:
- A JWT (HS256 only, from an allowlist, so ``alg=none`` or RS/HS confusion is refused)
  carries ``sub`` (user id), ``sid`` (a ``user_sessions`` row), ``iat``, ``exp``, ``iss`` and
  ``aud``. Every verification also loads the session row, so logging out, changing a password
  or "sign out everywhere" revokes a token at once instead of waiting for ``exp``.
- The web UI never hands its session token to JavaScript: after a login the browser gets a
  60-second *handoff* token (another audience, useless as a bearer token) and trades it for an
  HttpOnly cookie. A handoff is single-use: redeeming inserts its random ``jti`` into
  ``used_handoffs`` (primary key), so of any number of redemptions, concurrent ones included,
  exactly one commits and every other is refused. API clients get the session token itself,
  as a bearer token.
- Failed logins are kept in the database (so several workers share them) and slow the
  guesser down without locking anyone out. The unit is the pair (address, username): after
  ``login_free_attempts`` failures, the pair must wait ``login_base_delay_seconds``, doubling
  with every further failure up to ``login_max_delay_seconds``. An attempt that comes early
  is refused with ``Throttled`` ("try again in N seconds") *before* the password is checked,
  and is not counted, so waiting is always enough. Each allowed attempt is counted (and
  committed) before its password is checked, one pair at a time, so guesses sent in
  parallel get no more free attempts than guesses sent one after another. Others behind the
  same address (a proxy, a campus NAT) and the same username from elsewhere are not slowed
  by that pair.
- Two wider counts only take away the free attempts, never the first one: when a username
  has ``login_max_failures`` failures from anywhere (a guesser spread over many addresses),
  or an address has ``login_max_failures_per_ip`` over any usernames (one address spraying
  many accounts), every pair involved is paced from its first failure. No limit refuses the
  first attempt of a pair, so an attacker cannot lock a chosen account or a shared address
  out; a correct password in an allowed attempt always signs in. The per-username count is
  where a second factor or passkey will plug in (``username_is_guarded``): once a username
  is guarded, a sign-in could also require it, and pass the limit with it.
- Two-step sign-in: after a correct password for a user with an authenticator app, no
  session is opened. ``login`` raises ``SecondFactorRequired`` carrying a 5-minute token of
  its own audience (useless as a session or a handoff); ``finish_login`` takes it with a code
  and opens the session. Its ``jti`` is spent in ``used_handoffs`` like a handoff's, so one
  challenge opens at most one session. The password attempt is *not* cleared from the
  (address, username) count until the second step passes, and every code attempt is
  reserved like a password attempt, so knowing the password buys no free code guesses. The
  step asks ``two_factor.consume_code``, or ``passkeys.verify_assertion`` for a passkey.
- Passkeys (``passkeys``): a passkey sign-in is possession plus user verification, so it
  opens a session without a password or code; as a second step it passes like a code
  (counted the same way). Once a username is guarded (the per-username count above), a
  correct password alone no longer signs in *an account that has a second factor or a
  passkey*: it asks for one, and the owner passes with it (a passkey sign-in is never
  asked for a password at all). An account with neither keeps being paced, never locked:
  a lock that only its owner cannot open would let anyone lock any account.
- Devices: each session row keeps a short description of the browser that signed in and
  when it was last active. ``authenticate`` runs on every event and request, so it writes
  ``last_active_at`` only when the stored one is ``ACTIVITY_EVERY`` old.
- Addresses come from ``addresses.client_address``: ``X-Forwarded-For`` only from a
  configured proxy. A missing user costs the same argon2 work as a wrong password.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import BindParameter, ColumnElement, Row, String, bindparam, exists
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, select, update

from iris_reflex import clock
from iris_reflex.db import HotStatement
from iris_reflex.errors import NotAuthenticated, NotFound, SecondFactorRequired, Throttled
from iris_reflex.models import LoginFailure, UsedHandoff, User, UserSession
from iris_reflex.services import limits, passkeys, passwords, two_factor, users
from iris_reflex.services.addresses import UNKNOWN_ADDRESS
from iris_reflex.settings import get_settings

ALGORITHM = "HS256"
ISSUER = "iris"
SESSION_AUDIENCE = "iris:session"
HANDOFF_AUDIENCE = "iris:web-handoff"
HANDOFF_SECONDS = 60
SECOND_FACTOR_AUDIENCE = "iris:second-factor"
SECOND_FACTOR_SECONDS = 300
SECOND_FACTOR_METHODS = ("totp", "recovery_code")
PASSKEY_METHOD = "passkey"
# ``last_active_at`` is written at most this often per session (it is on every event's path).
ACTIVITY_EVERY = timedelta(minutes=5)
DEVICE_MAX = 80
# A token "issued" further in the future than this is forged or from a broken clock.
CLOCK_SKEW_SECONDS = 30

SESSION_ENDED = "Your session has ended. Please sign in again."
WRONG_CREDENTIALS = "Wrong username or password."
CODE_NEEDED = "Enter the code from your authenticator app, or a recovery code."
PASSKEY_NEEDED = (
    "Your account had many failed sign-ins recently: confirm it is you with your passkey."
)
WRONG_PASSKEY = "That passkey was not accepted."
WRONG_CODE = "That code is not correct."
CHALLENGE_ENDED = "That sign-in took too long. Enter your password again."
NO_SUCH_DEVICE = "That session has already ended."


@dataclass(frozen=True)
class SignedIn:
    """The outcome of a login: the user, their new session and its bearer token."""

    user: User
    session_id: str
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class Device:
    """One live session as the Devices list shows it. ``handle`` names it there: a digest
    of the session id, so the page never holds the id that the session's token carries."""

    handle: str
    description: str
    created_at: datetime
    last_active_at: datetime
    current: bool


@dataclass(frozen=True)
class Identity:
    """Who is asking, as proven by a verified token."""

    user_id: int
    session_id: str


def _secret() -> str:
    return get_settings().resolved_jwt_secret()


def _encode(claims: dict[str, object]) -> str:
    return jwt.encode(claims, _secret(), algorithm=ALGORITHM)


def _claims(token: str, audience: str, *, required: tuple[str, ...] = ()) -> dict[str, object]:
    """The claims of a valid, unexpired token for ``audience``; else ``NotAuthenticated``.

    Expiry is checked against ``clock.now()`` rather than by PyJWT against the wall clock, so
    the one clock of the app decides (and tests can move it).
    """
    try:
        claims = jwt.decode(
            token,
            _secret(),
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=ISSUER,
            options={
                "require": ["exp", "iat", "sub", "sid", "aud", "iss", *required],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
        expires, issued = int(claims["exp"]), int(claims["iat"])
        int(str(claims["sub"]))
    except (jwt.PyJWTError, TypeError, ValueError):
        raise NotAuthenticated(SESSION_ENDED) from None
    now = clock.now().timestamp()
    if expires <= now or issued > now + CLOCK_SKEW_SECONDS:
        raise NotAuthenticated(SESSION_ENDED)
    return claims


# Tokens this process already verified, by a SHA-256 of the signing secret, the audience and
# the token (never the token itself): (user id, session id, expiry). Every event of a tab
# verifies the same token again, and PyJWT's parsing and HMAC were 2 % of a busy worker's
# samples. A hit still checks the expiry against the app's clock, and the caller still
# checks the session's row (revocation); another secret never finds an entry.
_VERIFIED_MAX = 4096
_verified: dict[bytes, tuple[int, str, int]] = {}


def _decode(token: str, audience: str) -> tuple[int, str]:
    """The (user id, session id) of a valid token for ``audience``; else ``NotAuthenticated``."""
    digest = hashlib.sha256(f"{_secret()}\n{audience}\n{token}".encode()).digest()
    known = _verified.get(digest)
    if known is not None:
        user_id, session_id, expires = known
        if expires <= clock.now().timestamp():
            _verified.pop(digest, None)
            raise NotAuthenticated(SESSION_ENDED)
        return user_id, session_id
    claims = _claims(token, audience)
    user_id, session_id = int(str(claims["sub"])), str(claims["sid"])
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[digest] = (user_id, session_id, int(str(claims["exp"])))
    return user_id, session_id


def _delay_seconds(failures: int, free: int) -> int:
    """How long a pair waits after its latest failure, having ``failures`` in the window."""
    if failures < free:
        return 0
    settings = get_settings()
    doublings = min(failures - free, 30)
    return min(settings.login_base_delay_seconds * 2**doublings, settings.login_max_delay_seconds)


def _failures(session: Session, *where: Any) -> tuple[int, datetime | None]:
    count, latest = session.exec(
        select(func.count(), func.max(LoginFailure.failed_at)).where(*where)
    ).one()
    return int(count), latest


def username_is_guarded(session: Session, *, key: str, now: datetime) -> bool:
    """Whether a username has as many recent failures (from any address) as its limit."""
    since = now - timedelta(minutes=get_settings().login_window_minutes)
    count, _ = _failures(
        session, col(LoginFailure.username_key) == key, col(LoginFailure.failed_at) > since
    )
    return count >= get_settings().login_max_failures


def _lock_pair(session: Session, *, key: str, ip: str) -> None:
    """Serialise the attempts of one pair until the caller's transaction ends.

    PostgreSQL: a transaction-scoped advisory lock on the pair. SQLite: the caller's first
    write takes the database's write lock, which serialises every attempt anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.blake2b(f"{key}\x00{ip}".encode(), digest_size=8).digest()
        session.exec(select(func.pg_advisory_xact_lock(int.from_bytes(digest, signed=True))))


def reserve_attempt(
    session: Session, *, key: str, ip: str, now: datetime, second_step: bool = False
) -> None:
    """Count this attempt of the (address, username) pair as a failure *before* the password
    is checked, or refuse it if it comes before the pair may try again.

    The reservation is committed at once, so parallel attempts of one pair see each other:
    a burst of guesses sent together gets no more free attempts than guesses sent one by
    one. A correct password then clears the pair (``clear_failures``).

    ``second_step``: a code or passkey after a correct password. The password's attempt is
    still counted, but over a wider limit (only the first attempt free) it does not make the
    step right after it wait: a correct password plus a second factor still passes.

    Raises:
        Throttled: too early; ``retry_after`` is exactly the wait left. Nothing is counted.
    """
    settings = get_settings()
    since = now - timedelta(minutes=settings.login_window_minutes)
    recent = col(LoginFailure.failed_at) > since
    session.rollback()
    _lock_pair(session, key=key, ip=ip)
    row = LoginFailure(username_key=key, ip=ip, failed_at=now)
    session.add(row)
    session.flush()
    others = col(LoginFailure.id) != row.id
    pair, latest = _failures(
        session, col(LoginFailure.username_key) == key, col(LoginFailure.ip) == ip, recent, others
    )
    if pair > 0 and latest is not None:  # the first attempt of a pair is never refused
        address, _ = _failures(session, col(LoginFailure.ip) == ip, recent, others)
        crowded = address >= settings.login_max_failures_per_ip
        # Over a wider limit only the first attempt is free: the pair waits after each failure.
        guarded = crowded or username_is_guarded(session, key=key, now=now)
        free = (2 if second_step else 1) if guarded else settings.login_free_attempts
        wait = _delay_seconds(pair, free)
        left = (latest + timedelta(seconds=wait) - now).total_seconds()
        if left > 0:
            session.rollback()
            retry_after = max(1, math.ceil(left))
            raise Throttled(
                f"Too many failed sign-in attempts. Try again in {retry_after} second"
                f"{'s' if retry_after != 1 else ''}.",
                retry_after=retry_after,
            )
    session.commit()


def clear_failures(session: Session, *, key: str, ip: str) -> None:
    """Forget this pair's failures after a correct password (in the caller's transaction).

    Failures from other addresses stay: they still count towards the username's limit.
    """
    session.exec(
        delete(LoginFailure).where(
            col(LoginFailure.username_key) == key, col(LoginFailure.ip) == ip
        )
    )


def login(
    session: Session, *, username: str, password: str, ip: str, user_agent: str = ""
) -> SignedIn:
    """Check a username and password and open a new session.

    Raises:
        Throttled: this address tried this username again too early (see the module).
        NotAuthenticated: wrong username or password (one message for both).
        SecondFactorRequired: the password is right and the user has two-step sign-in on;
            pass its ``challenge`` and a code to ``finish_login``.
    """
    now = clock.now()
    key = users.username_key(username)[:64]
    ip = ip[:64] or UNKNOWN_ADDRESS
    session.rollback()
    guarded = bool(key) and username_is_guarded(session, key=key, now=now)  # before this one
    reserve_attempt(session, key=key, ip=ip, now=now)
    user = users.get_by_username(session, username) if key else None
    # No stored password is longer than the registration limit; checking a longer one would
    # only burn CPU (and passlib refuses over 4096 characters), so it is simply wrong.
    # Too long or not text (a lone surrogate cannot be hashed): no stored password matches.
    too_long = len(password) > users.PASSWORD_MAX or not users.is_text(password)
    if user is None or too_long:
        passwords.verify("x" * min(len(password), users.PASSWORD_MAX), passwords.DUMMY_HASH)
        ok, new_hash = False, None
    else:
        ok, new_hash = passwords.verify(password, user.password_hash)
    if not ok or user is None:
        raise NotAuthenticated(WRONG_CREDENTIALS)  # the reservation stays as the failure
    if new_hash:
        user.password_hash = new_hash
    assert user.id is not None
    methods = _second_factors(session, user.id, guarded=guarded)
    if methods:
        # The attempt stays counted until the second step passes (see the module).
        session.commit()
        raise SecondFactorRequired(
            CODE_NEEDED if "totp" in methods else PASSKEY_NEEDED,
            challenge=_issue_challenge(user.id, now),
            expires_in=SECOND_FACTOR_SECONDS,
            methods=methods,
        )
    clear_failures(session, key=key, ip=ip)
    signed_in = _open_session(session, user, now=now, user_agent=user_agent)
    session.commit()
    return signed_in


def _second_factors(session: Session, user_id: int, *, guarded: bool) -> tuple[str, ...]:
    """The ways to pass a second step this sign-in must take; empty: none is asked.

    Two-step sign-in on: a code, or a passkey if the user has one. Off: a passkey, only
    while the username is guarded (see the module); nothing otherwise.
    """
    has_passkey = passkeys.has_passkeys(session, user_id)
    if two_factor.is_enabled(session, user_id):
        return SECOND_FACTOR_METHODS + ((PASSKEY_METHOD,) if has_passkey else ())
    return (PASSKEY_METHOD,) if guarded and has_passkey else ()


def _issue_challenge(user_id: int, now: datetime) -> str:
    return _encode(
        {
            "iss": ISSUER,
            "aud": SECOND_FACTOR_AUDIENCE,
            "sub": str(user_id),
            "sid": "",  # no session yet
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + SECOND_FACTOR_SECONDS,
            "jti": secrets.token_urlsafe(24),
        }
    )


def finish_login(
    session: Session, *, challenge: str, code: str, ip: str, user_agent: str = ""
) -> SignedIn:
    """The second step: a challenge from ``login`` and a code open the session, once.

    Raises:
        NotAuthenticated: the challenge is forged, expired or already used (enter the
            password again), or the code is wrong (try another).
        Throttled: too many wrong passwords or codes from this address for this username.
    """
    user, jti, expires_at = _challenge_user(session, challenge)
    assert user.id is not None
    user_id = user.id
    now = clock.now()
    key, ip = user.username_key[:64], ip[:64] or UNKNOWN_ADDRESS
    reserve_attempt(session, key=key, ip=ip, now=now, second_step=True)
    if not isinstance(code, str) or not two_factor.consume_code(
        session, user_id=user_id, code=code, now=now
    ):
        session.rollback()
        raise NotAuthenticated(WRONG_CODE)  # the reservation stays as the failure
    # Commits the spent code with the spent challenge: of two uses, one wins.
    try:
        _spend_handoff(session, jti=jti, expires_at=expires_at)
    except NotAuthenticated:
        raise NotAuthenticated(CHALLENGE_ENDED) from None
    clear_failures(session, key=key, ip=ip)
    signed_in = _open_session(session, user, now=now, user_agent=user_agent)
    session.commit()
    return signed_in


def _challenge_user(session: Session, challenge: str) -> tuple[User, str, datetime]:
    """The user a second-step challenge is for, its ``jti`` and its expiry; else
    ``NotAuthenticated(CHALLENGE_ENDED)``."""
    try:
        claims = _claims(challenge, SECOND_FACTOR_AUDIENCE, required=("jti",))
    except NotAuthenticated:
        raise NotAuthenticated(CHALLENGE_ENDED) from None
    user_id, jti = int(str(claims["sub"])), str(claims["jti"])
    if not jti or len(jti) > 43:
        raise NotAuthenticated(CHALLENGE_ENDED)
    user = session.get(User, user_id)
    if user is None:
        raise NotAuthenticated(CHALLENGE_ENDED)
    return user, jti, datetime.fromtimestamp(int(str(claims["exp"])), tz=UTC)


def passkey_second_factor_options(session: Session, *, challenge: str) -> dict[str, Any]:
    """WebAuthn options to pass the second step (of ``challenge``) with a passkey.

    Raises:
        NotAuthenticated: the challenge is forged, expired or used (password again).
        Invalid: passkeys are not available here, or the user has none.
    """
    user, _, _ = _challenge_user(session, challenge)
    assert user.id is not None
    return passkeys.second_factor_options(session, user_id=user.id)


def finish_login_with_passkey(
    session: Session, *, challenge: str, credential: Any, ip: str, user_agent: str = ""
) -> SignedIn:
    """The second step passed with a passkey: like ``finish_login`` with a code, counted
    the same way, and the challenge opens one session at most.

    Raises:
        NotAuthenticated: the challenge has ended (password again), or the passkey was not
            accepted (try again). Throttled: too many failures from this address.
    """
    user, jti, expires_at = _challenge_user(session, challenge)
    assert user.id is not None
    now = clock.now()
    key, ip = user.username_key[:64], ip[:64] or UNKNOWN_ADDRESS
    reserve_attempt(session, key=key, ip=ip, now=now, second_step=True)
    try:
        passkeys.verify_assertion(
            session, credential=credential, purpose=passkeys.SECOND_FACTOR, user_id=user.id
        )
    except NotAuthenticated:
        session.rollback()
        raise NotAuthenticated(WRONG_PASSKEY) from None  # the reservation stays
    try:
        _spend_handoff(session, jti=jti, expires_at=expires_at)  # commits the new sign count
    except NotAuthenticated:
        raise NotAuthenticated(CHALLENGE_ENDED) from None
    clear_failures(session, key=key, ip=ip)
    signed_in = _open_session(session, user, now=now, user_agent=user_agent)
    session.commit()
    return signed_in


def passkey_sign_in_options(session: Session, *, ip: str) -> dict[str, Any]:
    """WebAuthn options to sign in with a passkey alone, counted against the address.

    Raises:
        Throttled: this address asked for too many. Invalid: passkeys are not available.
    """
    limits.hit(session, limits.passkey_challenges(), ip[:64] or UNKNOWN_ADDRESS)
    return passkeys.sign_in_options(session)


def login_with_passkey(
    session: Session, *, credential: Any, ip: str, user_agent: str = ""
) -> SignedIn:
    """Sign in with a passkey (a discoverable credential, user verified): a new session,
    without password or code. The address's failed attempts for that user are forgotten.

    Raises:
        NotAuthenticated: the response does not answer a live sign-in challenge, or names
            no passkey, or the spec's checks refuse it.
    """
    user_id = passkeys.verify_assertion(session, credential=credential, purpose=passkeys.SIGN_IN)
    user = session.get(User, user_id)
    if user is None:
        session.rollback()
        raise NotAuthenticated(WRONG_PASSKEY)
    clear_failures(session, key=user.username_key[:64], ip=ip[:64] or UNKNOWN_ADDRESS)
    signed_in = _open_session(session, user, now=clock.now(), user_agent=user_agent)
    session.commit()
    return signed_in


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def describe_device(user_agent: str) -> str:
    """A short description of a User-Agent ("Firefox on Linux"), at most ``DEVICE_MAX``
    characters; a client that is not a known browser is named by its first word."""
    agent = user_agent[:512]
    browser = next((name for mark, name in _BROWSERS if mark in agent), "")
    system = next((name for mark, name in _SYSTEMS if mark in agent), "")
    if browser and system:
        text = f"{browser} on {system}"
    elif browser or system:
        text = browser or system
    else:
        text = agent.split(" ", 1)[0].split("/", 1)[0].strip()
    text = "".join(ch for ch in text if ch.isprintable())
    return text[:DEVICE_MAX] or "Unknown device"


def _open_session(session: Session, user: User, *, now: datetime, user_agent: str = "") -> SignedIn:
    assert user.id is not None
    lifetime = timedelta(minutes=get_settings().jwt_lifetime_minutes)
    row = UserSession(
        id=secrets.token_urlsafe(32),
        user_id=user.id,
        created_at=now,
        expires_at=now + lifetime,
        device=describe_device(user_agent),
        last_active_at=now,
    )
    session.add(row)
    token = _encode(
        {
            "iss": ISSUER,
            "aud": SESSION_AUDIENCE,
            "sub": str(user.id),
            "sid": row.id,
            "iat": int(now.timestamp()),
            "exp": int(row.expires_at.timestamp()),
        }
    )
    return SignedIn(user=user, session_id=row.id, token=token, expires_at=row.expires_at)


def open_session(session: Session, user: User, *, user_agent: str = "") -> SignedIn:
    """A new session for a user whose identity is already proven (committed): the same
    token ``login`` gives, without a password round (argon2 is most of a login's cost)."""
    signed_in = _open_session(session, user, now=clock.now(), user_agent=user_agent)
    session.commit()
    return signed_in


# Every event and push checks its session: the statement is built once (SQLAlchemy then
# reuses its cache key and compiled SQL) and reads plain columns, not an ORM entity (the
# ORM's loading cost more CPU than the database took to answer).
_SESSIONS = UserSession.metadata.tables["user_sessions"]
_SESSION_BY_ID = HotStatement(
    _SESSIONS.select().where(_SESSIONS.c.id == bindparam("id", type_=String))
)


def live_session_clause(
    *,
    user_id: ColumnElement[int] | BindParameter[int],
    session_id: BindParameter[str],
    now: BindParameter[datetime],
) -> ColumnElement[bool]:
    """SQL that is true while the session is live for that user (not revoked, not expired):
    ``session_is_live`` as a condition, for a hot statement that checks the session in the
    same trip as its own work (``conversations.read_on_arrival``)."""
    return exists().where(
        _SESSIONS.c.id == session_id,
        _SESSIONS.c.user_id == user_id,
        _SESSIONS.c.revoked_at.is_(None),
        _SESSIONS.c.expires_at > now,
    )


def _live_session(session: Session, *, user_id: int, session_id: str) -> Row[Any]:
    row = _SESSION_BY_ID.run(session, {"id": session_id}).first()
    now = clock.now()
    if row is None or row.user_id != user_id or row.revoked_at is not None or row.expires_at <= now:
        raise NotAuthenticated(SESSION_ENDED)
    return row


def session_is_live(session: Session, identity: Identity) -> bool:
    """Whether a previously verified session is still valid (not revoked, not expired)."""
    try:
        _live_session(session, user_id=identity.user_id, session_id=identity.session_id)
    except NotAuthenticated:
        return False
    return True


def authenticate(session: Session, token: str | None) -> Identity:
    """The identity proven by a session token; ``NotAuthenticated`` for anything else.

    Expired, tampered, wrongly signed, revoked and handoff tokens are all refused alike.
    """
    if not token:
        raise NotAuthenticated(SESSION_ENDED)
    user_id, session_id = _decode(token, SESSION_AUDIENCE)
    row = _live_session(session, user_id=user_id, session_id=session_id)
    note_activity(session, session_id, row.last_active_at, now=clock.now())
    return Identity(user_id=user_id, session_id=session_id)


def claimed_identity(token: str | None) -> Identity | None:
    """The identity a session token claims (signature, audience and expiry checked), without
    the database: for a statement that checks the session itself (``live_session_clause``).
    None for anything ``authenticate`` would refuse before reading the database."""
    if not token:
        return None
    try:
        user_id, session_id = _decode(token, SESSION_AUDIENCE)
    except NotAuthenticated:
        return None
    return Identity(user_id=user_id, session_id=session_id)


def note_activity(
    session: Session, session_id: str, last_active_at: datetime | None, *, now: datetime
) -> None:
    """Record that the session is in use, at most once per ``ACTIVITY_EVERY``: most events
    only read the time they already loaded (``last_active_at``). The conditional update
    keeps concurrent events from writing it twice."""
    if last_active_at is not None and now - last_active_at < ACTIVITY_EVERY:
        return
    stale = col(UserSession.last_active_at).is_(None) | (
        col(UserSession.last_active_at) <= now - ACTIVITY_EVERY
    )
    session.exec(
        update(UserSession)
        .where(col(UserSession.id) == session_id, stale)
        .values(last_active_at=now)
    )
    session.commit()


def signed_in_user(session: Session, token: str | None) -> tuple[Identity, User]:
    """The identity proven by a session token and its user, verified once."""
    identity = authenticate(session, token)
    user = session.get(User, identity.user_id)
    if user is None:
        raise NotAuthenticated(SESSION_ENDED)
    return identity, user


def issue_handoff(identity: Identity) -> str:
    """A 60-second token the browser trades for its HttpOnly session cookie."""
    now = clock.now()
    return _encode(
        {
            "iss": ISSUER,
            "aud": HANDOFF_AUDIENCE,
            "sub": str(identity.user_id),
            "sid": identity.session_id,
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + HANDOFF_SECONDS,
            "jti": secrets.token_urlsafe(24),
        }
    )


def _spend_handoff(session: Session, *, jti: str, expires_at: datetime) -> None:
    """Mark a handoff used, or raise ``NotAuthenticated`` if it already was.

    The insert is the check: a concurrent redemption of the same ``jti`` waits on the
    primary key (PostgreSQL) or the write lock (SQLite) and then fails to insert.
    """
    session.add(UsedHandoff(jti=jti, expires_at=expires_at))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise NotAuthenticated(SESSION_ENDED) from None


def redeem_handoff(session: Session, handoff: str) -> tuple[str, datetime]:
    """The session token (and its expiry) named by a valid handoff token, once: a handoff
    already redeemed is refused like a forged one."""
    claims = _claims(handoff, HANDOFF_AUDIENCE, required=("jti",))
    user_id, session_id, jti = int(str(claims["sub"])), str(claims["sid"]), str(claims["jti"])
    if not jti or len(jti) > 43:
        raise NotAuthenticated(SESSION_ENDED)
    row = _live_session(session, user_id=user_id, session_id=session_id)
    _spend_handoff(
        session, jti=jti, expires_at=datetime.fromtimestamp(int(str(claims["exp"])), tz=UTC)
    )
    token = _encode(
        {
            "iss": ISSUER,
            "aud": SESSION_AUDIENCE,
            "sub": str(user_id),
            "sid": row.id,
            "iat": int(row.created_at.timestamp()),
            "exp": int(row.expires_at.timestamp()),
        }
    )
    return token, row.expires_at


def logout(session: Session, identity: Identity) -> None:
    """End one session: its tokens stop working at once. Idempotent."""
    session.exec(
        update(UserSession)
        .where(col(UserSession.id) == identity.session_id, col(UserSession.revoked_at).is_(None))
        .values(revoked_at=clock.now())
    )
    session.commit()


def revoke_sessions(session: Session, *, user_id: int, keep_session_id: str | None = None) -> int:
    """End every session of a user (but ``keep_session_id``); returns how many ended."""
    statement = (
        update(UserSession)
        .where(col(UserSession.user_id) == user_id, col(UserSession.revoked_at).is_(None))
        .values(revoked_at=clock.now())
    )
    if keep_session_id is not None:
        statement = statement.where(col(UserSession.id) != keep_session_id)
    result = session.exec(statement)
    session.commit()
    return int(result.rowcount or 0)


def device_handle(session_id: str) -> str:
    """The Devices list's name for a session (not its id, see ``Device``)."""
    return hashlib.blake2b(session_id.encode(), digest_size=12).hexdigest()


def _live_rows(session: Session, user_id: int) -> list[UserSession]:
    now = clock.now()
    return list(
        session.exec(
            select(UserSession).where(
                col(UserSession.user_id) == user_id,
                col(UserSession.revoked_at).is_(None),
                col(UserSession.expires_at) > now,
            )
        ).all()
    )


def list_devices(session: Session, identity: Identity) -> list[Device]:
    """The caller's live sessions, the current one first, then the most recently active."""
    devices = [
        Device(
            handle=device_handle(row.id),
            description=row.device or "Unknown device",
            created_at=row.created_at,
            last_active_at=row.last_active_at or row.created_at,
            current=row.id == identity.session_id,
        )
        for row in _live_rows(session, identity.user_id)
    ]
    devices.sort(key=lambda d: (not d.current, -d.last_active_at.timestamp(), d.handle))
    return devices


def revoke_device(session: Session, identity: Identity, *, handle: str) -> str:
    """End one of the caller's own live sessions, by its handle; returns its session id.

    Raises:
        NotFound: no live session of the caller has that handle (one answer for someone
            else's, an ended one and nonsense).
    """
    for row in _live_rows(session, identity.user_id):
        if hmac.compare_digest(device_handle(row.id).encode(), str(handle).encode()):
            logout(session, Identity(user_id=identity.user_id, session_id=row.id))
            return row.id
    raise NotFound(NO_SUCH_DEVICE)


def prune(session: Session, *, now: datetime | None = None) -> None:
    """Forget failures past the window and sessions past their expiry (housekeeping)."""
    now = now or clock.now()
    window = timedelta(minutes=get_settings().login_window_minutes)
    session.exec(delete(LoginFailure).where(col(LoginFailure.failed_at) <= now - window))
    session.exec(delete(UserSession).where(col(UserSession.expires_at) <= now))
    # A used handoff past its expiry is refused by its ``exp`` anyway: its row can go.
    session.exec(delete(UsedHandoff).where(col(UsedHandoff.expires_at) <= now))
    session.commit()
