"""Passkeys (WebAuthn): register one, sign in with one, or pass the second step with one.

Why it is built this way:
- The ``webauthn`` package does the cryptography and the spec's checks (challenge, origin,
  RP id hash, user presence and verification, signature, and the sign count rule: a count
  that does not grow, when either side is non-zero, is refused as a possibly cloned
  authenticator). This module decides what is asked and what is stored.
- The relying party comes from configuration only: ``IRIS_PASSKEY_RP_ID``, else the host
  of the first allowed origin that is a name (browsers refuse an IP address as an RP id).
  The origins a response may come from are the allowed origins under that id
  (``IRIS_ALLOWED_ORIGINS``), never whatever a request's headers claim.
- A challenge is 32 random bytes stored server-side (``passkey_challenges``, so any worker
  can check the answer) with its purpose and, except for a passkey sign-in, the user who may
  answer it; it lives ``CHALLENGE_SECONDS``. Answering deletes its row first, committed
  before the answer is checked: of any number of answers, concurrent ones included, exactly
  one deletes it, and a wrong answer has used it up too. The row is found by the challenge
  the browser signed (in ``clientDataJSON``), so clients send nothing else to name it.
- Sign-in asks for a discoverable credential (resident key) and user verification: the
  passkey alone is possession plus a PIN or biometric, so it satisfies two-step sign-in.
  As a second factor (after a password) presence is enough, and only the user's own
  credentials are offered.
- The sign count and "last used" are written by one conditional ``UPDATE`` that only
  succeeds while the stored count is the one the check was made against: two assertions
  racing with one count cannot both pass.
- The WebAuthn user id is a random handle per user (kept on each of their passkeys), not the
  database id or the username, as the spec recommends.
- Throttling lives in ``auth`` (second step, like codes) and ``limits`` (sign-in challenges
  per address): a failed assertion is not a guess that can be repeated cheaply, but each
  try needs a fresh challenge, and those are counted.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import webauthn
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, func, select, update
from webauthn.helpers import bytes_to_base64url, parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from iris_reflex import clock
from iris_reflex.errors import Conflict, Invalid, NotAuthenticated, NotFound
from iris_reflex.models import Passkey, PasskeyChallenge
from iris_reflex.services import users
from iris_reflex.settings import get_settings

RP_NAME = "Iris"
CHALLENGE_SECONDS = 300
TIMEOUT_MS = 120_000
REGISTER, SIGN_IN, SECOND_FACTOR = "register", "sign_in", "second_factor"
NAME_MAX = 64
PER_USER_MAX = 20
CREDENTIAL_MAX = 32_768  # characters of a response's JSON (an attestation carries certificates)

NOT_AVAILABLE = "Passkeys are not set up on this server (no allowed origin has a domain name)."
REFUSED = "That passkey was not accepted. Try again."
REGISTER_FAILED = "The passkey could not be added. Try again."
ALREADY_ADDED = "That passkey is already added."
TOO_MANY = f"You have {PER_USER_MAX} passkeys already: delete one first."
NO_SUCH_PASSKEY = "That passkey does not exist."
BAD_NAME = f"Give the passkey a name of 1 to {NAME_MAX} characters."

_TRANSPORTS = {t.value for t in AuthenticatorTransport}


@dataclass(frozen=True)
class PasskeyInfo:
    """One passkey as its owner's list shows it."""

    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class RelyingParty:
    """Who the passkeys are for: the RP id, and the page origins that may use them."""

    id: str
    origins: tuple[str, ...]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def relying_party() -> RelyingParty:
    """The configured relying party (see the module).

    Raises:
        Invalid: no allowed origin can use passkeys (all are IP addresses, or none is under
            ``IRIS_PASSKEY_RP_ID``).
    """
    origins = get_settings().origins()
    hosts = [(origin, urlsplit(origin).hostname or "") for origin in origins]
    rp_id = get_settings().passkey_rp_id.strip().lower()
    if not rp_id:
        rp_id = next((host for _, host in hosts if not _is_address(host)), "")
    under = tuple(o for o, host in hosts if rp_id and (host == rp_id or host.endswith("." + rp_id)))
    if not rp_id or _is_address(rp_id) or not under:
        raise Invalid(NOT_AVAILABLE)
    return RelyingParty(id=rp_id, origins=under)


def _options_dict(options: Any) -> dict[str, Any]:
    return dict(json.loads(webauthn.options_to_json(options)))


def _new_challenge(
    session: Session, *, purpose: str, user_id: int | None, user_handle: str = ""
) -> bytes:
    """A fresh challenge for ``purpose``, stored and committed."""
    challenge = secrets.token_bytes(32)
    session.add(
        PasskeyChallenge(
            challenge=bytes_to_base64url(challenge),
            purpose=purpose,
            user_id=user_id,
            user_handle=user_handle,
            expires_at=clock.now() + timedelta(seconds=CHALLENGE_SECONDS),
        )
    )
    session.commit()
    return challenge


def _signed_challenge(credential: dict[str, Any]) -> str:
    """The challenge (base64url) the authenticator's client signed; "" if unreadable."""
    try:
        raw = webauthn.base64url_to_bytes(str(credential["response"]["clientDataJSON"]))
        return bytes_to_base64url(parse_client_data_json(raw).challenge)
    except (KeyError, TypeError, ValueError, WebAuthnException):
        return ""


def _spend_challenge(
    session: Session, credential: Any, *, purpose: str, user_id: int | None
) -> PasskeyChallenge | None:
    """Use up the challenge a response answers (committed at once) and return it, or
    ``None`` when there is none: unknown, expired, already answered, for another purpose or
    another user."""
    if not isinstance(credential, dict) or len(json.dumps(credential)) > CREDENTIAL_MAX:
        return None
    key = _signed_challenge(credential)
    if not key or len(key) > 86:
        return None
    row = session.get(PasskeyChallenge, key)
    if row is None:
        return None
    usable = row.purpose == purpose and row.user_id == user_id and row.expires_at > clock.now()
    result = session.exec(delete(PasskeyChallenge).where(col(PasskeyChallenge.challenge) == key))
    session.commit()
    if not result.rowcount or not usable:  # another answer deleted it first, or not this one's
        return None
    return row


def _user_handle(session: Session, user_id: int) -> str:
    existing = session.exec(
        select(Passkey.user_handle).where(col(Passkey.user_id) == user_id).limit(1)
    ).first()
    return existing or bytes_to_base64url(secrets.token_bytes(32))


def _rows(session: Session, user_id: int) -> list[Passkey]:
    return list(
        session.exec(
            select(Passkey).where(col(Passkey.user_id) == user_id).order_by(col(Passkey.id))
        ).all()
    )


def _descriptor(row: Passkey) -> PublicKeyCredentialDescriptor:
    transports = [AuthenticatorTransport(t) for t in row.transports.split(",") if t in _TRANSPORTS]
    return PublicKeyCredentialDescriptor(
        id=webauthn.base64url_to_bytes(row.credential_id), transports=transports or None
    )


def has_passkeys(session: Session, user_id: int) -> bool:
    """Whether the user has at least one passkey."""
    count = session.exec(
        select(func.count()).select_from(Passkey).where(col(Passkey.user_id) == user_id)
    ).one()
    return int(count) > 0


def list_passkeys(session: Session, *, actor_id: int) -> list[PasskeyInfo]:
    """The actor's passkeys, oldest first."""
    return [
        PasskeyInfo(
            id=row.id or 0, name=row.name, created_at=row.created_at, last_used_at=row.last_used_at
        )
        for row in _rows(session, actor_id)
    ]


def clean_name(name: Any) -> str:
    """A passkey's name as stored: printable, trimmed, 1 to ``NAME_MAX`` characters.

    Raises:
        Invalid: empty or too long once trimmed, or not text.
    """
    if not isinstance(name, str) or not users.is_text(name):
        raise Invalid(BAD_NAME)
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())
    if not 0 < len(text) <= NAME_MAX:
        raise Invalid(BAD_NAME)
    return text


# ----------------------------------------------------------------------------- registration


def registration_options(session: Session, *, actor_id: int) -> dict[str, Any]:
    """The ``publicKey`` options for ``navigator.credentials.create`` (JSON-ready) for the
    actor, who has already proven it is them (``accounts.begin_passkey_registration``).

    Raises:
        Invalid: passkeys are not available here. Conflict: too many already.
        NotFound: no such user.
    """
    user = users.access_user(session, actor_id)
    rp = relying_party()
    rows = _rows(session, actor_id)
    if len(rows) >= PER_USER_MAX:
        raise Conflict(TOO_MANY)
    handle = _user_handle(session, actor_id)
    challenge = _new_challenge(session, purpose=REGISTER, user_id=actor_id, user_handle=handle)
    options = webauthn.generate_registration_options(
        rp_id=rp.id,
        rp_name=RP_NAME,
        user_name=user.username,
        user_display_name=user.display_name or user.username,
        user_id=webauthn.base64url_to_bytes(handle),
        challenge=challenge,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[_descriptor(row) for row in rows],
    )
    return _options_dict(options)


def register(session: Session, *, actor_id: int, credential: Any, name: Any) -> PasskeyInfo:
    """Store the passkey a browser created for the actor's registration challenge.

    Raises:
        Invalid: a bad name, an unknown, expired or used challenge, or a response the spec's
            checks refuse (nothing is stored; ask for new options).
        Conflict: that credential is already registered.
    """
    label = clean_name(name)
    rp = relying_party()
    spent = _spend_challenge(session, credential, purpose=REGISTER, user_id=actor_id)
    if spent is None:
        raise Invalid(REGISTER_FAILED)
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=webauthn.base64url_to_bytes(spent.challenge),
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError):
        raise Invalid(REGISTER_FAILED) from None
    response = credential.get("response") if isinstance(credential, dict) else None
    listed = response.get("transports") if isinstance(response, dict) else None
    transports = [t for t in listed if t in _TRANSPORTS] if isinstance(listed, list) else []
    now = clock.now()
    row = Passkey(
        user_id=actor_id,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=",".join(dict.fromkeys(transports))[:128],
        user_handle=spent.user_handle,
        name=label,
        created_at=now,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(ALREADY_ADDED) from None
    return PasskeyInfo(id=row.id or 0, name=row.name, created_at=now, last_used_at=None)


def rename(session: Session, *, actor_id: int, passkey_id: int, name: Any) -> PasskeyInfo:
    """Give one of the actor's passkeys another name.

    Raises:
        NotFound: not one of the actor's passkeys. Invalid: a bad name.
    """
    label = clean_name(name)
    row = session.get(Passkey, passkey_id)
    if row is None or row.user_id != actor_id:
        raise NotFound(NO_SUCH_PASSKEY)
    row.name = label
    session.add(row)
    session.commit()
    return PasskeyInfo(
        id=passkey_id, name=label, created_at=row.created_at, last_used_at=row.last_used_at
    )


def remove(session: Session, *, actor_id: int, passkey_id: int) -> None:
    """Delete one of the actor's passkeys, in the caller's transaction (it signs in no more).

    Raises:
        NotFound: not one of the actor's passkeys (someone else's, a deleted one, nonsense).
    """
    result = session.exec(
        delete(Passkey).where(col(Passkey.id) == passkey_id, col(Passkey.user_id) == actor_id)
    )
    if not result.rowcount:
        raise NotFound(NO_SUCH_PASSKEY)


def forget_user(session: Session, *, user_id: int) -> None:
    """Every passkey and pending challenge of a user (deleting the account), uncommitted."""
    session.exec(delete(Passkey).where(col(Passkey.user_id) == user_id))
    session.exec(delete(PasskeyChallenge).where(col(PasskeyChallenge.user_id) == user_id))


# --------------------------------------------------------------------------- authentication


def sign_in_options(session: Session) -> dict[str, Any]:
    """Options for ``navigator.credentials.get`` to sign in with any passkey of this site
    (discoverable credentials, user verification required). The caller counts the request
    against the address's limit first."""
    rp = relying_party()
    challenge = _new_challenge(session, purpose=SIGN_IN, user_id=None)
    options = webauthn.generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return _options_dict(options)


def second_factor_options(session: Session, *, user_id: int) -> dict[str, Any]:
    """Options to pass the second step with one of this user's passkeys (the user proved
    the password already).

    Raises:
        Invalid: passkeys are not available here, or the user has none.
    """
    rp = relying_party()
    rows = _rows(session, user_id)
    if not rows:
        raise Invalid("You have no passkey yet: use a code.")
    challenge = _new_challenge(session, purpose=SECOND_FACTOR, user_id=user_id)
    options = webauthn.generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=[_descriptor(row) for row in rows],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    return _options_dict(options)


def verify_assertion(
    session: Session, *, credential: Any, purpose: str, user_id: int | None = None
) -> int:
    """Check a browser's answer to a sign-in (``user_id`` None) or second-step challenge
    (``user_id`` the user who typed the password); returns the passkey's user id. The new
    sign count and "last used" are flushed in the caller's transaction.

    Raises:
        NotAuthenticated: no usable challenge, an unknown passkey, another user's passkey,
            or a response the spec's checks refuse (the challenge is used up either way).
    """
    rp = relying_party()
    spent = _spend_challenge(session, credential, purpose=purpose, user_id=user_id)
    if spent is None:
        raise NotAuthenticated(REFUSED)
    credential_id = str(credential.get("rawId") or credential.get("id") or "")[:1400]
    if not users.is_text(credential_id):
        raise NotAuthenticated(REFUSED)
    row = session.exec(select(Passkey).where(col(Passkey.credential_id) == credential_id)).first()
    if row is None or (user_id is not None and row.user_id != user_id):
        raise NotAuthenticated(REFUSED)
    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    if handle and handle != row.user_handle:
        raise NotAuthenticated(REFUSED)
    if purpose == SIGN_IN and not handle:
        raise NotAuthenticated(REFUSED)  # a discoverable credential always names its user
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=webauthn.base64url_to_bytes(spent.challenge),
            expected_rp_id=rp.id,
            expected_origin=list(rp.origins),
            credential_public_key=row.public_key,
            credential_current_sign_count=row.sign_count,
            require_user_verification=purpose == SIGN_IN,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError):
        raise NotAuthenticated(REFUSED) from None
    updated = session.exec(
        update(Passkey)
        .where(col(Passkey.id) == row.id, col(Passkey.sign_count) == row.sign_count)
        .values(sign_count=verified.new_sign_count, last_used_at=clock.now())
    )
    if not updated.rowcount:
        session.rollback()
        raise NotAuthenticated(REFUSED)  # another assertion with this count won
    return row.user_id


def prune(session: Session, *, now: datetime | None = None) -> None:
    """Forget challenges nobody answered in time (housekeeping)."""
    now = now or clock.now()
    session.exec(delete(PasskeyChallenge).where(col(PasskeyChallenge.expires_at) <= now))
    session.commit()
