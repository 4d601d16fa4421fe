"""Friendships: who is whose friend, the one gate for messaging, and finding people.

Why it is built this way:
- A pair of users has at most one ``friendships`` row (``user_low_id < user_high_id`` and a
  unique constraint), whichever side acted: a pending request (``friend_requests.py``) or,
  once accepted, a friendship. Removing a friend deletes that row.
- ``access_friend`` is the one gate for messaging: it answers the same ``NotFound`` for a
  missing user, a stranger and a blocked pair (``blocks.py``), so nothing reveals who exists.
  Search hides anyone who blocked the actor.
- Every write is one transaction committed here, a conditional delete (``WHERE status =
  'accepted'``), so a friendship ended by someone else in the meantime is refused instead of
  deleted twice. Other users are returned only as ``PublicUser`` (id, username, display name;
  friends also see each other's status and picture).
"""

from __future__ import annotations

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    case,
    exists,
    or_,
)
from sqlmodel import Session, col, delete, select

from iris_reflex.errors import NotFound
from iris_reflex.models import Block, Friendship, FriendshipStatus, User
from iris_reflex.services import limits, pairs, users
from iris_reflex.services.users import PublicUser

SEARCH_LIMIT_MAX = 20

ACCEPTED = FriendshipStatus.ACCEPTED.value

NOT_A_FRIEND = "Not in your friends."
NO_SUCH_CONVERSATION = "No such conversation."


def find_pair(session: Session, a: int, b: int) -> Friendship | None:
    """The request or friendship between ``a`` and ``b``, as the database has it now."""
    low, high = pairs.ordered(a, b)
    return session.exec(
        select(Friendship)
        .where(Friendship.user_low_id == low, Friendship.user_high_id == high)
        .execution_options(populate_existing=True)
    ).first()


def are_friends(session: Session, a_id: int, b_id: int) -> bool:
    """Whether ``a`` and ``b`` have an accepted friendship (blocks are not considered)."""
    if a_id == b_id:
        return False
    row = find_pair(session, a_id, b_id)
    return row is not None and row.status == ACCEPTED


_USERS = User.metadata.tables["users"]
_FRIENDSHIPS = Friendship.metadata.tables["friendships"]
_BLOCKS = Block.metadata.tables["blocks"]


def _a_friend_of(
    actor_id: int | BindParameter[int], other: ColumnElement[int] | None = None
) -> list[ColumnElement[bool]]:
    """Conditions on ``other`` (``User.id`` by default): an accepted friend of the actor,
    and no block either way. One statement answers what used to take four (the hot path of
    every message)."""
    # The tables' own columns (not the ORM's attributes): the conditions fit ORM queries and
    # the plain statements of the hot path alike.
    friendships, blocks = _FRIENDSHIPS.c, _BLOCKS.c
    them = _USERS.c.id if other is None else other
    friendship = exists().where(
        friendships.status == ACCEPTED,
        or_(
            and_(friendships.user_low_id == actor_id, friendships.user_high_id == them),
            and_(friendships.user_high_id == actor_id, friendships.user_low_id == them),
        ),
    )
    blocked = exists().where(
        or_(
            and_(blocks.blocker_id == actor_id, blocks.blocked_id == them),
            and_(blocks.blocker_id == them, blocks.blocked_id == actor_id),
        )
    )
    return [them != actor_id, friendship, ~blocked]


def friends_clause(
    actor_id: BindParameter[int], other: ColumnElement[int] | BindParameter[int]
) -> ColumnElement[bool]:
    """SQL that is true while ``other`` is the actor's friend and neither blocked the other:
    the gate ``access_friend`` applies, as a condition for a statement that checks it in the
    same trip as its own work."""
    return and_(*_a_friend_of(actor_id, other))


# The gate runs on every message, several times: its statements are built once, with
# placeholders, so SQLAlchemy reuses their cache key and compiled SQL (building this one per
# call cost about 1 ms of CPU, more than the database took to answer it).
_ACTOR = bindparam("actor_id", type_=Integer)
_FRIEND_BY_KEY = select(User).where(
    User.username_key == bindparam("key", type_=String), *_a_friend_of(_ACTOR)
)
_FRIEND_BY_ID = select(User).where(
    User.id == bindparam("user_id", type_=Integer), *_a_friend_of(_ACTOR)
)
_FRIEND_ID = select(User.id).where(
    User.id == bindparam("user_id", type_=Integer), *_a_friend_of(_ACTOR)
)


def access_friend(session: Session, *, actor_id: int, username: str) -> User:
    """The friend's row when the two are friends and neither blocked the other.

    Raises:
        NotFound: the user is missing, not a friend, blocked either way, or the actor.
    """
    params = {"key": users.username_key(username), "actor_id": actor_id}
    user = session.exec(_FRIEND_BY_KEY, params=params).first()
    if user is None or user.id is None:
        raise NotFound(NO_SUCH_CONVERSATION)
    return user


def access_friend_id(session: Session, *, actor_id: int, user_id: int) -> User:
    """``access_friend`` for a user known by id (the other person of a message)."""
    params = {"user_id": user_id, "actor_id": actor_id}
    user = session.exec(_FRIEND_BY_ID, params=params).first()
    if user is None or user.id is None:
        raise NotFound(NO_SUCH_CONVERSATION)
    return user


def check_friend_id(session: Session, *, actor_id: int, user_id: int) -> None:
    """``access_friend_id`` when only the answer matters (no row to load).

    Raises:
        NotFound: as ``access_friend``.
    """
    params = {"user_id": user_id, "actor_id": actor_id}
    if session.exec(_FRIEND_ID, params=params).first() is None:
        raise NotFound(NO_SUCH_CONVERSATION)


def search_users(
    session: Session, *, actor_id: int, query: str, limit: int = 8
) -> list[PublicUser]:
    """Users whose username starts with ``query`` (any case), the exact match first.

    The actor and anyone who blocked the actor are left out; ``limit`` is clamped to 1..20.

    Raises:
        Throttled: the actor searched more than ``limits.searches`` allows (usernames are
            not to be listed by brute force).
    """
    key = users.username_key(query)
    if not key:
        return []
    limits.hit(session, limits.searches(), str(actor_id))
    limit = max(1, min(limit, SEARCH_LIMIT_MAX))
    # '_' is legal in usernames and '%' and '\' would be wildcards or escapes: match literally.
    pattern = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = session.exec(
        select(User.id, User.username, User.display_name)
        .where(
            col(User.username_key).like(pattern, escape="\\"),
            User.id != actor_id,
            ~exists().where(col(Block.blocker_id) == User.id, col(Block.blocked_id) == actor_id),
        )
        .order_by(case((col(User.username_key) == key, 0), else_=1), User.username_key)
        .limit(limit)
    ).all()
    return [
        PublicUser(id=uid, username=username, display_name=display_name)
        for uid, username, display_name in rows
        if uid is not None
    ]


def list_friends(session: Session, *, actor_id: int) -> list[PublicUser]:
    """The actor's friends, by username (case-insensitive), with their status and picture
    fingerprint (strangers in search and requests see only names)."""
    rows = session.exec(
        # sqlmodel types select() for at most four columns; this one takes five.
        select(  # type: ignore[call-overload]
            User.id, User.username, User.display_name, User.status_message, User.avatar_key
        )
        .join(
            Friendship,
            # "The other one of the pair" as one expression, so the database can hash-join
            # it (an OR of two pairings makes PostgreSQL compare every user with every row).
            User.id
            == case(
                (col(Friendship.user_low_id) == actor_id, Friendship.user_high_id),
                else_=Friendship.user_low_id,
            ),
        )
        .where(
            or_(col(Friendship.user_low_id) == actor_id, col(Friendship.user_high_id) == actor_id),
            Friendship.status == ACCEPTED,
            # A friendship and a block never coexist, except after a race with block().
            ~exists().where(
                or_(
                    and_(col(Block.blocker_id) == actor_id, col(Block.blocked_id) == User.id),
                    and_(col(Block.blocker_id) == User.id, col(Block.blocked_id) == actor_id),
                )
            ),
        )
        .order_by(User.username_key)
    ).all()
    return [
        PublicUser(
            id=int(uid),
            username=username,
            display_name=display_name,
            status_message=status,
            avatar_version=users.avatar_version(avatar_key),
        )
        for uid, username, display_name, status, avatar_key in rows
    ]


def remove_friend(session: Session, *, actor_id: int, username: str) -> int:
    """End a friendship; returns the former friend's id.

    Raises:
        NotFound: the user is missing or not a friend (one message for both).
    """
    friend_id = users.require_id(session, username, NOT_A_FRIEND)
    if friend_id == actor_id:
        raise NotFound(NOT_A_FRIEND)
    low, high = pairs.ordered(actor_id, friend_id)
    result = session.exec(
        delete(Friendship).where(
            col(Friendship.user_low_id) == low,
            col(Friendship.user_high_id) == high,
            col(Friendship.status) == ACCEPTED,
        )
    )
    if result.rowcount != 1:
        session.rollback()
        raise NotFound(NOT_A_FRIEND)
    session.commit()
    return friend_id
