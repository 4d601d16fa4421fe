"""Profile, receipts and the end of sessions or of a whole account, announced after commit."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from iris_reflex.db import forget_deleted
from iris_reflex.live import outbox
from iris_reflex.live.events import FriendsChanged, ProfileChanged, ReceiptsChanged, SessionsEnded
from iris_reflex.services import accounts, auth, avatars, users


def update_profile(
    db: Session,
    *,
    actor_id: int,
    display_name: str | None = None,
    status_message: str | None = None,
    skip_token: str | None = None,
) -> users.Me:
    """Name and/or status: friends' lists and the user's other tabs show them at once."""
    me = users.update_profile(
        db, actor_id=actor_id, display_name=display_name, status_message=status_message
    )
    outbox.publish(ProfileChanged(actor_id), skip_token=skip_token)
    return me


def set_avatar(db: Session, *, actor_id: int, source: Path, skip_token: str | None = None) -> str:
    """A new picture (returns its version); friends see it at once."""
    version = avatars.set_avatar(db, actor_id=actor_id, source=source)
    outbox.publish(ProfileChanged(actor_id), skip_token=skip_token)
    return version


def remove_avatar(db: Session, *, actor_id: int, skip_token: str | None = None) -> None:
    avatars.remove_avatar(db, actor_id=actor_id)
    outbox.publish(ProfileChanged(actor_id), skip_token=skip_token)


def set_read_receipts(
    db: Session, *, actor_id: int, enabled: bool, skip_token: str | None = None
) -> None:
    """Send (and see) read receipts, or neither: friends' bubbles and the user's own open
    chats change too."""
    users.set_read_receipts(db, actor_id=actor_id, enabled=enabled)
    outbox.publish(ReceiptsChanged(actor_id), skip_token=skip_token)


def change_password(
    db: Session,
    *,
    actor_id: int,
    session_id: str,
    current_password: str,
    new_password: str,
    ip: str,
    skip_token: str | None = None,
) -> int:
    """Store the new password; every other session ends and its open tabs are signed out.
    Returns how many sessions ended."""
    ended = accounts.change_password(
        db,
        actor_id=actor_id,
        session_id=session_id,
        current_password=current_password,
        new_password=new_password,
        ip=ip,
    )
    outbox.publish(SessionsEnded(actor_id), skip_token=skip_token)
    return ended


def sign_out_everywhere(db: Session, *, actor_id: int, skip_token: str | None = None) -> int:
    """End every session of the user; open tabs (but the asking one) are signed out."""
    ended = accounts.sign_out_everywhere(db, actor_id=actor_id)
    outbox.publish(SessionsEnded(actor_id), skip_token=skip_token)
    return ended


def sign_out_device(
    db: Session, *, identity: auth.Identity, handle: str, skip_token: str | None = None
) -> bool:
    """End one session from the Devices list; its open tabs are emptied and signed out.
    Returns whether it was the asking session itself."""
    ended = accounts.sign_out_device(db, identity, handle=handle)
    # Tabs still on a live session keep it (``push.sign_out_ended_sessions`` re-checks each).
    outbox.publish(SessionsEnded(identity.user_id), skip_token=skip_token)
    return ended == identity.session_id


def delete_account(
    db: Session, *, actor_id: int, password: str, ip: str, skip_token: str | None = None
) -> None:
    """Delete the account; screens that showed it update, and its own tabs are signed out."""
    others = accounts.delete_account(db, actor_id=actor_id, password=password, ip=ip)
    forget_deleted()  # its messages, profile and sessions: no copy left in the files
    if others:
        outbox.publish(FriendsChanged(tuple(others)))
    outbox.publish(SessionsEnded(actor_id), skip_token=skip_token)
