"""Two-step sign-in: an authenticator app's codes (TOTP, RFC 6238) and recovery codes.

Why it is built this way:
- The secret lives server-side only (``totp_secrets``); the browser sees it once, while
  enrolling, as a QR code and as text. Two-step sign-in is on only after a code from the
  app was accepted (``confirmed_at``), so a mistyped or unscanned secret never locks anyone
  out.
- A code is accepted once: the newest accepted time step is stored (``last_step``) and the
  update that records it only succeeds while the stored step is older (one conditional
  ``UPDATE``), so a code seen over someone's shoulder, or sent twice at once, works once.
  One step (30 s) of clock drift either way is allowed.
- Recovery codes are 80 random bits each (16 base-32 characters), shown once and stored as
  SHA-256. A slow hash (argon2) protects *guessable* secrets; these are not guessable, so a
  stolen table still costs 2**80 work per code, and a fast hash keeps "is this one of the
  user's ten codes?" a single indexed lookup instead of ten argon2 verifications per try.
  Spending one is one conditional ``UPDATE`` (``used_at IS NULL``): each works once.
- Throttling of wrong codes is not here: ``auth`` counts every second-factor attempt in the
  same (address, username) table as passwords, before the code is checked.
- "Pass the second factor" is one function (``consume_code``) so another way to pass it
  (a passkey) can be added beside it without touching the login flow's shape.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from sqlmodel import Session, col, delete, func, select, update

from iris_reflex import clock
from iris_reflex.errors import Conflict, Invalid
from iris_reflex.models import RecoveryCode, TotpSecret
from iris_reflex.services import users

ISSUER = "Iris"
RECOVERY_CODES = 10
# Accepted time steps around now: one 30-second step of drift either way.
DRIFT_STEPS = 1
WRONG_CODE = "That code is not correct."
NOT_ENROLLING = "Start setting up two-step sign-in again."
ALREADY_ON = "Two-step sign-in is already on."
NOT_ON = "Two-step sign-in is not on."

_RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 symbols, no 0/o, 1/l
_SIX_DIGITS = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class Enrolment:
    """What the person needs to add Iris to an authenticator app."""

    secret: str
    uri: str
    qr_svg: str  # a data: URI of the QR code


@dataclass(frozen=True)
class Status:
    """Whether two-step sign-in is on, and how many recovery codes are left."""

    enabled: bool
    recovery_codes_left: int


def _matching_step(secret: str, code: str, now: datetime, *, after: int | None) -> int | None:
    """The time step (within the drift) whose code is ``code`` and is newer than ``after``."""
    totp = pyotp.TOTP(secret)
    current = int(totp.timecode(now))
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Every candidate is compared (constant work), in constant time.
        if hmac.compare_digest(totp.generate_otp(step), code) and (after is None or step > after):
            found = step
    return found


def _digits(code: str) -> str:
    return re.sub(r"[\s-]", "", code)


def _recovery_hash(code: str) -> str:
    normal = re.sub(r"[\s-]", "", code).lower()
    return hashlib.sha256(normal.encode("utf-8", "replace")).hexdigest()


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _confirmed(session: Session, user_id: int) -> TotpSecret | None:
    row = session.get(TotpSecret, user_id)
    return row if row is not None and row.confirmed_at is not None else None


def is_enabled(session: Session, user_id: int) -> bool:
    """Whether signing in as this user needs a second factor."""
    return _confirmed(session, user_id) is not None


def status(session: Session, *, actor_id: int) -> Status:
    """What the settings page shows about two-step sign-in."""
    left = session.exec(
        select(func.count())
        .select_from(RecoveryCode)
        .where(col(RecoveryCode.user_id) == actor_id, col(RecoveryCode.used_at).is_(None))
    ).one()
    return Status(enabled=is_enabled(session, actor_id), recovery_codes_left=int(left))


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as an SVG data URI (dark modules on a white quiet zone, so it
    scans on a dark page too)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=4, dark="#000", light="#fff")


def begin_enrolment(session: Session, *, actor_id: int) -> Enrolment:
    """A new secret for the actor, not yet in force (``confirm_enrolment`` turns it on).

    Starting again replaces an unconfirmed secret.

    Raises:
        Conflict: two-step sign-in is already on (turn it off first).
        NotFound: no such user.
    """
    user = users.access_user(session, actor_id)
    if is_enabled(session, actor_id):
        raise Conflict(ALREADY_ON)
    secret = pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends
    row = session.get(TotpSecret, actor_id)
    if row is None:
        row = TotpSecret(user_id=actor_id, secret=secret, created_at=clock.now())
    row.secret, row.created_at, row.last_step = secret, clock.now(), None
    session.add(row)
    session.commit()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return Enrolment(secret=secret, uri=uri, qr_svg=qr_svg(uri))


def _replace_recovery_codes(session: Session, user_id: int) -> list[str]:
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    now = clock.now()
    for code in codes:
        session.add(RecoveryCode(user_id=user_id, code_hash=_recovery_hash(code), created_at=now))
    return codes


def confirm_enrolment(session: Session, *, actor_id: int, code: str) -> list[str]:
    """Turn two-step sign-in on with a code from the app; returns the ten recovery codes,
    which are never shown again.

    Raises:
        Invalid: the code does not match the pending secret, or nothing is pending.
        Conflict: already on.
    """
    row = session.get(TotpSecret, actor_id)
    if row is None:
        raise Invalid(NOT_ENROLLING)
    if row.confirmed_at is not None:
        raise Conflict(ALREADY_ON)
    step = _matching_step(row.secret, _digits(code), clock.now(), after=None)
    if step is None or not _SIX_DIGITS.match(_digits(code)):
        raise Invalid(WRONG_CODE)
    row.confirmed_at, row.last_step = clock.now(), step
    session.add(row)
    codes = _replace_recovery_codes(session, actor_id)
    session.commit()
    return codes


def cancel_enrolment(session: Session, *, actor_id: int) -> None:
    """Forget an unconfirmed secret (the person left the setup). Idempotent."""
    session.exec(
        delete(TotpSecret).where(
            col(TotpSecret.user_id) == actor_id, col(TotpSecret.confirmed_at).is_(None)
        )
    )
    session.commit()


def consume_code(session: Session, *, user_id: int, code: str, now: datetime) -> bool:
    """Whether ``code`` passes the user's second factor, spending it: a six-digit code from
    the app (newer than the last one accepted, within the drift) or an unused recovery
    code. The spending is flushed in the caller's transaction, which commits it.

    Returns False when two-step sign-in is off, and for anything else that does not match.
    """
    row = _confirmed(session, user_id)
    if row is None:
        return False
    digits = _digits(code)
    if _SIX_DIGITS.match(digits):
        step = _matching_step(row.secret, digits, now, after=row.last_step)
        if step is None:
            return False
        stale = col(TotpSecret.last_step).is_(None) | (col(TotpSecret.last_step) < step)
        result = session.exec(
            update(TotpSecret)
            .where(col(TotpSecret.user_id) == user_id, stale)
            .values(last_step=step)
        )
        return bool(result.rowcount)
    if not 0 < len(digits) <= 64:
        return False
    result = session.exec(
        update(RecoveryCode)
        .where(
            col(RecoveryCode.user_id) == user_id,
            col(RecoveryCode.code_hash) == _recovery_hash(digits),
            col(RecoveryCode.used_at).is_(None),
        )
        .values(used_at=now)
    )
    return bool(result.rowcount)


def turn_off(session: Session, *, actor_id: int) -> None:
    """Remove the secret and the recovery codes (the caller proved who is asking)."""
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == actor_id))
    session.exec(delete(TotpSecret).where(col(TotpSecret.user_id) == actor_id))


def new_recovery_codes(session: Session, *, actor_id: int) -> list[str]:
    """Ten fresh recovery codes replacing the old ones (the caller proved who is asking)."""
    if not is_enabled(session, actor_id):
        raise Invalid(NOT_ON)
    return _replace_recovery_codes(session, actor_id)


def current_code(secret: str, now: datetime) -> str:
    """The app's code at ``now`` (for tests and tools that stand in for the app)."""
    return pyotp.TOTP(secret).at(now)
