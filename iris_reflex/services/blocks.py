"""Blocks: one user refusing another, without telling them.

Why it is built this way:
- A block is never announced. What the blocked user can still do (send a request, which
  they see as outgoing and the blocker never sees) is decided in ``friend_requests.py``;
  search hides the blocker from them (``friends.search_users``).
- Blocking deletes any friendship or pending request between the two in the transaction that
  stores the block. Blocking twice, or unblocking someone not blocked, changes nothing.
- ``blocked_between`` looks both ways: ``friends.access_friend`` refuses a pair in which
  either has blocked the other.
"""

from __future__ import annotations

from sqlalchemy import and_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from iris_reflex import clock
from iris_reflex.errors import Conflict, Invalid
from iris_reflex.models import Block, Friendship, User
from iris_reflex.services import pairs, users
from iris_reflex.services.users import PublicUser


def has_blocked(session: Session, blocker_id: int, blocked_id: int) -> bool:
    """Whether ``blocker`` has blocked ``blocked`` (one direction only)."""
    return (
        session.exec(
            select(Block.id).where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
        ).first()
        is not None
    )


def blocked_between(session: Session, a_id: int, b_id: int) -> bool:
    """Whether either of ``a`` and ``b`` has blocked the other."""
    return has_blocked(session, a_id, b_id) or has_blocked(session, b_id, a_id)


def list_blocked(session: Session, *, actor_id: int) -> list[PublicUser]:
    """The users the actor blocked, by username (case-insensitive)."""
    rows = session.exec(
        select(User.id, User.username, User.display_name)
        .join(Block, and_(col(Block.blocked_id) == User.id, col(Block.blocker_id) == actor_id))
        .order_by(User.username_key)
    ).all()
    return [
        PublicUser(id=uid, username=username, display_name=display_name)
        for uid, username, display_name in rows
        if uid is not None
    ]


def block(session: Session, *, actor_id: int, username: str) -> int:
    """Block a user (idempotent); any friendship or request between the two is deleted.

    Raises:
        NotFound: no such user.
        Invalid: the actor named themselves.
    """
    target_id = users.require_id(session, username)
    if target_id == actor_id:
        raise Invalid("You cannot block yourself.")
    for _ in range(pairs.ATTEMPTS):
        low, high = pairs.ordered(actor_id, target_id)
        session.exec(
            delete(Friendship).where(
                col(Friendship.user_low_id) == low, col(Friendship.user_high_id) == high
            )
        )
        if not has_blocked(session, actor_id, target_id):
            session.add(Block(blocker_id=actor_id, blocked_id=target_id, created_at=clock.now()))
        try:
            session.commit()
        except IntegrityError:
            # Blocked twice at once (two tabs): the other block stands; delete the pair again.
            session.rollback()
            continue
        return target_id
    raise Conflict(pairs.TRY_AGAIN)


def unblock(session: Session, *, actor_id: int, username: str) -> int:
    """Lift the actor's block on a user (idempotent); returns their id.

    Raises:
        NotFound: no such user.
    """
    target_id = users.require_id(session, username)
    session.exec(
        delete(Block).where(col(Block.blocker_id) == actor_id, col(Block.blocked_id) == target_id)
    )
    session.commit()
    return target_id
