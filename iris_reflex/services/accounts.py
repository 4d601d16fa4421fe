"""A user's own account: preferences, password, sessions, and deleting everything.

Why it is built this way:
- Re-entering the password (to change it or to delete the account) counts a wrong guess as a
  failed login in the same table and under the same limits as ``auth.login``: a stolen
  session must not get an unlimited guessing budget through the settings page. A too-long
  guess costs the same argon2 work as any other, and nothing here answers faster for it.
- Changing the password ends every *other* session in the same transaction that stores the
  new hash: whoever knew the old password is signed out at the moment it stops working.
- Turning two-step sign-in off, and replacing the recovery codes, need the password or a
  current code: a stolen session alone must not be able to remove the second factor or
  read fresh recovery codes. Both count a wrong answer like a wrong password. Adding a
  passkey (a new way to sign in, with no password) and deleting one need the same proof.
- Deleting an account is a sequence of short, idempotent steps, ending with the user row.
  **A crash midway leaves the account retryable**: the user row and its password survive
  until the very last step, so the person can sign in again and delete again, and every
  step finds only what is left. The first step revokes every session and removes
  friendships, requests and blocks, so from then on nobody can send a message to or from the
  account; the half-deleted account is invisible to everyone else.
- Files before rows, as in the expiry sweep: messages go through ``expiry.purge`` (the same
  code path as timers and "delete for everyone"), uploads and the avatar lose their files
  before the rows that name them. A crash can leave a row whose file is gone (harmless,
  deleting a missing file is not an error) but never a file that no row names.
- The final transaction locks the user row, then checks that no message or upload appeared
  meanwhile (a send already past its checks); if one did, it is purged and the last step
  runs again, so a cascade from the user row never drops an attachment row whose file is
  still on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, delete, select

from iris_reflex import clock
from iris_reflex.errors import Conflict, Invalid, NotFound
from iris_reflex.models import (
    Attachment,
    Block,
    Conversation,
    Friendship,
    LoginFailure,
    Message,
    Theme,
    User,
    UserSession,
)
from iris_reflex.services import (
    auth,
    expiry,
    pairs,
    passkeys,
    passwords,
    storage,
    timers,
    two_factor,
    users,
)
from iris_reflex.services.addresses import UNKNOWN_ADDRESS

WRONG_PASSWORD = "That password is not correct."  # noqa: S105 (a message)
SAME_PASSWORD = "The new password is the same as the current one."  # noqa: S105
# The ``ip`` recorded for a wrong password typed in the settings when the caller has none.
UNKNOWN_IP = UNKNOWN_ADDRESS
# Messages purged per transaction while deleting an account.
_PURGE_BATCH = 500
# Rounds of "purge what appeared meanwhile" before the final step gives up.
_ATTEMPTS = 5


@dataclass(frozen=True)
class Preferences:
    """What the settings page shows: the signed-in user's own choices."""

    username: str
    theme: str
    read_receipts: bool
    default_timer_seconds: int | None


def get_preferences(session: Session, *, actor_id: int) -> Preferences:
    """The actor's theme, receipts and default timer.

    Raises:
        NotFound: no such user.
    """
    user = users.access_user(session, actor_id)
    return Preferences(
        username=user.username,
        theme=user.theme,
        read_receipts=user.read_receipts,
        default_timer_seconds=user.default_timer_seconds,
    )


def validate_theme(theme: str) -> str:
    """``"light"``, ``"dark"`` or ``"system"``, or ``Invalid``."""
    try:
        return Theme(theme).value
    except ValueError:
        raise Invalid("Choose a light, dark or system theme.") from None


def set_theme(session: Session, *, actor_id: int, theme: str) -> str:
    """Remember the actor's colour scheme; returns it.

    Raises:
        Invalid: not one of light, dark, system.
        NotFound: no such user.
    """
    value = validate_theme(theme)
    user = users.access_user(session, actor_id)
    user.theme = value
    session.add(user)
    session.commit()
    return value


def set_default_timer(session: Session, *, actor_id: int, seconds: int | None) -> int | None:
    """Remember the timer that conversations the actor starts later will have.

    ``None`` or ``0`` turns it off. Existing conversations keep theirs. Returns what is stored.

    Raises:
        Invalid: outside 5 seconds to 365 days.
        NotFound: no such user.
    """
    value = timers.validate_timer(seconds)
    user = users.access_user(session, actor_id)
    user.default_timer_seconds = value
    session.add(user)
    session.commit()
    return value


def _check_password(session: Session, user: User, password: str, *, ip: str) -> str | None:
    """Verify the actor's password as a login would; returns a rehash when one is due.

    Raises:
        Throttled: this address tried too early after wrong passwords (logins included).
        Invalid: the password is wrong; the failure is recorded and committed.
    """
    now = clock.now()
    ip = ip[:64] or UNKNOWN_IP
    key = user.username_key[:64]
    auth.reserve_attempt(session, key=key, ip=ip, now=now)
    if len(password) > users.PASSWORD_MAX:
        # Stored passwords are never longer: same work as a wrong one, then refused.
        passwords.verify(password[: users.PASSWORD_MAX], passwords.DUMMY_HASH)
        ok, new_hash = False, None
    else:
        ok, new_hash = passwords.verify(password, user.password_hash)
    if not ok:
        raise Invalid(WRONG_PASSWORD)  # the reserved attempt stays as the failure
    auth.clear_failures(session, key=key, ip=ip)
    return new_hash


def change_password(
    session: Session,
    *,
    actor_id: int,
    session_id: str,
    current_password: str,
    new_password: str,
    ip: str = UNKNOWN_IP,
) -> int:
    """Replace the actor's password and end every other session; returns how many ended.

    The session ``session_id`` (the one asking) stays signed in. The new hash and the
    revocations are one transaction.

    Raises:
        Throttled: too many wrong passwords recently.
        Invalid: the current password is wrong, or the new one is too short, too long or
            the same as the current one. Nothing changes.
        NotFound: no such user.
    """
    users.validate_password(new_password)
    user = users.access_user(session, actor_id)
    _check_password(session, user, current_password, ip=ip)
    if new_password == current_password:
        session.commit()  # the cleared failure count
        raise Invalid(SAME_PASSWORD)
    user.password_hash = passwords.hash_password(new_password)
    session.add(user)
    # Commits the new hash and the revocations together.
    return auth.revoke_sessions(session, user_id=actor_id, keep_session_id=session_id)


WRONG_PASSWORD_OR_CODE = "That password or code is not correct."  # noqa: S105 (a message)


def _reauthenticate(
    session: Session, user: User, *, password: str = "", code: str = "", ip: str
) -> None:
    """The actor proves it is them again: with the password, or with a current code from
    the authenticator app (or a recovery code), counted like a login attempt either way.

    Raises:
        Throttled: too many wrong answers recently.
        Invalid: wrong (the failure is recorded and committed).
    """
    if password:
        try:
            new_hash = _check_password(session, user, password, ip=ip)
        except Invalid:
            raise Invalid(WRONG_PASSWORD_OR_CODE) from None
        if new_hash:
            user.password_hash = new_hash
            session.add(user)
        return
    now = clock.now()
    ip, key = ip[:64] or UNKNOWN_IP, user.username_key[:64]
    auth.reserve_attempt(session, key=key, ip=ip, now=now)
    assert user.id is not None
    if not code or not two_factor.consume_code(session, user_id=user.id, code=code, now=now):
        session.rollback()
        raise Invalid(WRONG_PASSWORD_OR_CODE)
    auth.clear_failures(session, key=key, ip=ip)


def turn_off_two_factor(
    session: Session, *, actor_id: int, password: str = "", code: str = "", ip: str = UNKNOWN_IP
) -> None:
    """Turn two-step sign-in off (secret and recovery codes deleted), after the password or
    a current code.

    Raises:
        Invalid: it is not on, or the password and code are wrong. Throttled: see above.
    """
    user = users.access_user(session, actor_id)
    if not two_factor.is_enabled(session, actor_id):
        raise Invalid(two_factor.NOT_ON)
    _reauthenticate(session, user, password=password, code=code, ip=ip)
    two_factor.turn_off(session, actor_id=actor_id)
    session.commit()


def regenerate_recovery_codes(
    session: Session, *, actor_id: int, password: str = "", code: str = "", ip: str = UNKNOWN_IP
) -> list[str]:
    """Ten new recovery codes (the old ones stop working), after the password or a current
    code; shown once.

    Raises:
        Invalid: two-step sign-in is off, or the password and code are wrong.
    """
    user = users.access_user(session, actor_id)
    if not two_factor.is_enabled(session, actor_id):
        raise Invalid(two_factor.NOT_ON)
    _reauthenticate(session, user, password=password, code=code, ip=ip)
    codes = two_factor.new_recovery_codes(session, actor_id=actor_id)
    session.commit()
    return codes


def begin_passkey_registration(
    session: Session, *, actor_id: int, password: str = "", code: str = "", ip: str = UNKNOWN_IP
) -> dict[str, Any]:
    """WebAuthn options to add a passkey, after the password or a current code: a stolen
    session must not be able to give itself a way back in.

    Raises:
        Invalid: the password and code are wrong, or passkeys are not available here.
        Throttled: see above. Conflict: too many passkeys already.
    """
    user = users.access_user(session, actor_id)
    _reauthenticate(session, user, password=password, code=code, ip=ip)
    session.commit()
    return passkeys.registration_options(session, actor_id=actor_id)


def remove_passkey(
    session: Session,
    *,
    actor_id: int,
    passkey_id: int,
    password: str = "",
    code: str = "",
    ip: str = UNKNOWN_IP,
) -> None:
    """Delete one of the actor's passkeys, after the password or a current code (as
    turning two-step sign-in off).

    Raises:
        NotFound: not one of the actor's passkeys (checked first, nothing is counted).
        Invalid: the password and code are wrong. Throttled: see above.
    """
    user = users.access_user(session, actor_id)
    if not any(p.id == passkey_id for p in passkeys.list_passkeys(session, actor_id=actor_id)):
        raise NotFound(passkeys.NO_SUCH_PASSKEY)
    _reauthenticate(session, user, password=password, code=code, ip=ip)
    passkeys.remove(session, actor_id=actor_id, passkey_id=passkey_id)
    session.commit()


def sign_out_device(session: Session, identity: auth.Identity, *, handle: str) -> str:
    """End one of the actor's sessions from the Devices list; returns the ended session id."""
    return auth.revoke_device(session, identity, handle=handle)


def sign_out_everywhere(session: Session, *, actor_id: int) -> int:
    """End every session of the actor, the current one included; returns how many ended."""
    return auth.revoke_sessions(session, user_id=actor_id)


def _people_to_notify(session: Session, user_id: int) -> list[int]:
    """Users whose friends panel shows ``user_id``: friends, either side of a pending
    request, and those who blocked them."""
    rows = session.exec(
        select(Friendship.user_low_id, Friendship.user_high_id).where(
            or_(col(Friendship.user_low_id) == user_id, col(Friendship.user_high_id) == user_id)
        )
    ).all()
    found = {pairs.other(low, high, me=user_id) for low, high in rows}
    found.update(session.exec(select(Block.blocker_id).where(Block.blocked_id == user_id)).all())
    found.discard(user_id)
    return sorted(found)


def _cut_off(session: Session, user_id: int) -> None:
    """Step 1: no session of the user works and nobody is linked to them any more."""
    session.exec(
        delete(Friendship).where(
            or_(col(Friendship.user_low_id) == user_id, col(Friendship.user_high_id) == user_id)
        )
    )
    session.exec(
        delete(Block).where(or_(col(Block.blocker_id) == user_id, col(Block.blocked_id) == user_id))
    )
    # Commits the two deletes above with the revocations.
    auth.revoke_sessions(session, user_id=user_id)


def _purge_messages(session: Session, user_id: int) -> None:
    """Step 2: every message to or from the user, files first (``expiry.purge``)."""
    while True:
        ids = [
            int(i)
            for i in session.exec(
                select(Message.id)
                .where(or_(col(Message.sender_id) == user_id, col(Message.recipient_id) == user_id))
                .order_by(col(Message.id))
                .limit(_PURGE_BATCH)
            ).all()
            if i is not None
        ]
        if not ids:
            return
        expiry.purge(session, ids)


def _purge_uploads(session: Session, user_id: int) -> None:
    """Step 3: whatever the user uploaded that is still stored (pending uploads, mostly):
    files first, then rows."""
    rows = session.exec(
        select(Attachment.id, Attachment.storage_key, Attachment.thumbnail_key).where(
            Attachment.uploader_id == user_id
        )
    ).all()
    if not rows:
        return
    storage.delete_keys(key for _, file_key, thumb_key in rows for key in (file_key, thumb_key))
    session.exec(delete(Attachment).where(col(Attachment.id).in_([r[0] for r in rows])))
    session.commit()


def _purge_avatar(session: Session, user: User) -> None:
    """Step 4: the avatar's file, then the column that names it."""
    if user.avatar_key:
        storage.delete_keys([user.avatar_key])
        user.avatar_key = None
        session.add(user)
        session.commit()


def _leftovers(session: Session, user_id: int) -> bool:
    """Whether a message or an upload of the user appeared since it was purged."""
    message = session.exec(
        select(Message.id)
        .where(or_(col(Message.sender_id) == user_id, col(Message.recipient_id) == user_id))
        .limit(1)
    ).first()
    upload = session.exec(
        select(Attachment.id).where(Attachment.uploader_id == user_id).limit(1)
    ).first()
    return message is not None or upload is not None


def _remove_user(session: Session, user: User) -> bool:
    """Last step, one transaction: conversations, sessions, login failures, the user row.

    Returns ``False`` (and changes nothing) when a message or upload of the user appeared
    since it was purged. The user row is locked first (PostgreSQL) and a write comes before
    the check (SQLite takes its write lock), so nothing new can slip in between the check
    and the delete, whose cascades would otherwise drop an attachment row but not its file.
    """
    user_id = user.id
    assert user_id is not None
    session.exec(select(User.id).where(User.id == user_id).with_for_update())
    session.exec(delete(UserSession).where(col(UserSession.user_id) == user_id))
    if _leftovers(session, user_id):
        session.rollback()
        return False
    session.exec(
        delete(Conversation).where(
            or_(
                col(Conversation.user_low_id) == user_id,
                col(Conversation.user_high_id) == user_id,
            )
        )
    )
    session.exec(delete(LoginFailure).where(col(LoginFailure.username_key) == user.username_key))
    passkeys.forget_user(session, user_id=user_id)  # the cascade would too; said, not implied
    session.exec(delete(User).where(col(User.id) == user_id))
    session.commit()
    return True


def delete_account(
    session: Session, *, actor_id: int, password: str, ip: str = UNKNOWN_IP
) -> list[int]:
    """Delete the actor's account and everything it owns; the username is free afterwards.

    Returns the ids of users whose screens showed the account (ex-friends, the other side
    of pending requests, people who blocked it), to be told after this returns.

    Raises:
        Throttled: too many wrong passwords recently.
        Invalid: the password is wrong; nothing is deleted.
        NotFound: no such user (already deleted).
        Conflict: messages kept arriving during the deletion; what is done stays done and
            trying again finishes it.
    """
    user = users.access_user(session, actor_id)
    _check_password(session, user, password, ip=ip)
    notify = _people_to_notify(session, actor_id)
    _cut_off(session, actor_id)
    for _ in range(_ATTEMPTS):
        _purge_messages(session, actor_id)
        _purge_uploads(session, actor_id)
        _purge_avatar(session, user)
        if _remove_user(session, user):
            return notify
    raise Conflict("Your account is still receiving data. Please try again.")
