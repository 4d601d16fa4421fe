"""Friend requests, friendships and blocks: who may talk to whom.

Why it is built this way:
- A pair of users has at most one ``friendships`` row (``user_low_id < user_high_id`` and a
  unique constraint), whichever side acted. A request is that row with status ``pending``;
  accepting flips it to ``accepted``; declining, cancelling, removing and blocking delete it.
  Two requests sent at the same moment collide on the constraint: the loser rolls back,
  reads the pair again and applies the same rules, so crossing requests become a friendship.
- A block is never announced. The blocked user can still send a request and sees it as
  outgoing; the blocker simply never sees it (it is filtered out when listed and cannot be
  accepted or declined). Search hides the blocker from the blocked user. Blocking deletes any
  friendship or pending request between the two.
- ``access_friend`` is the one gate for messaging: it answers the same ``NotFound`` for a
  missing user, a stranger and a blocked pair, so nothing reveals who exists.
- Every write is one transaction committed here; state transitions are conditional updates
  and deletes (``WHERE status = 'pending'``), so a request changed by someone else in the
  meantime is refused instead of overwritten. Other users are returned only as
  ``PublicUser`` (id, username, display name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, exists, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select, update

from iris_reflex import clock
from iris_reflex.errors import Conflict, Forbidden, Invalid, NotFound
from iris_reflex.models import Block, Friendship, FriendshipStatus, User
from iris_reflex.services import pairs, users
from iris_reflex.services.users import PublicUser

SEARCH_LIMIT_MAX = 20
# A write that keeps colliding with concurrent changes gives up after this many tries.
_ATTEMPTS = 3

PENDING = FriendshipStatus.PENDING.value
ACCEPTED = FriendshipStatus.ACCEPTED.value
DECLINED = "declined"
CANCELLED = "cancelled"

NO_SUCH_USER = "No user with that username."
NO_SUCH_REQUEST = "No such friend request."
NOT_A_FRIEND = "Not in your friends."
NO_SUCH_CONVERSATION = "No such conversation."
TRY_AGAIN = "Someone else changed this at the same moment. Please try again."


@dataclass(frozen=True)
class FriendRequest:
    """A pending request as either side sees it."""

    id: int
    requester: PublicUser
    addressee: PublicUser
    created_at: datetime


@dataclass(frozen=True)
class Requests:
    """The actor's pending requests, newest first."""

    incoming: list[FriendRequest]
    outgoing: list[FriendRequest]


@dataclass(frozen=True)
class RequestOutcome:
    """What a request action did, for the caller's notifications.

    ``status`` is ``"pending"``, ``"accepted"``, ``"declined"`` or ``"cancelled"``;
    ``requester_id`` and ``addressee_id`` are those of the request row, whoever acted.
    """

    request_id: int
    status: str
    requester_id: int
    addressee_id: int


# --- helpers --------------------------------------------------------------------------------


def _find_pair(session: Session, a: int, b: int) -> Friendship | None:
    """The request or friendship between ``a`` and ``b``, as the database has it now."""
    low, high = pairs.ordered(a, b)
    return session.exec(
        select(Friendship)
        .where(Friendship.user_low_id == low, Friendship.user_high_id == high)
        .execution_options(populate_existing=True)
    ).first()


def _addressee_id(row: Friendship) -> int:
    return pairs.other(row.user_low_id, row.user_high_id, me=row.requester_id)


def _outcome(row: Friendship, status: str) -> RequestOutcome:
    assert row.id is not None
    return RequestOutcome(
        request_id=row.id,
        status=status,
        requester_id=row.requester_id,
        addressee_id=_addressee_id(row),
    )


def _has_blocked(session: Session, blocker_id: int, blocked_id: int) -> bool:
    return (
        session.exec(
            select(Block.id).where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
        ).first()
        is not None
    )


def _require_user(session: Session, username: str, message: str = NO_SUCH_USER) -> int:
    """The id of the user with this username (any letter case), or ``NotFound``."""
    user = users.get_by_username(session, username)
    if user is None or user.id is None:
        raise NotFound(message)
    return user.id


def _public_users(session: Session, ids: Iterable[int]) -> dict[int, PublicUser]:
    """Only the public columns: the password hash is never even loaded."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.exec(
        select(User.id, User.username, User.display_name).where(col(User.id).in_(wanted))
    ).all()
    return {
        uid: PublicUser(id=uid, username=username, display_name=display_name)
        for uid, username, display_name in rows
        if uid is not None
    }


def _access_incoming(session: Session, actor_id: int, request_id: int) -> Friendship:
    """A pending request addressed to the actor and visible to them, or ``NotFound``."""
    row = session.exec(
        select(Friendship)
        .where(Friendship.id == request_id)
        .execution_options(populate_existing=True)
    ).first()
    if (
        row is None
        or row.status != PENDING
        or actor_id not in (row.user_low_id, row.user_high_id)
        or row.requester_id == actor_id
        or _has_blocked(session, actor_id, row.requester_id)
    ):
        raise NotFound(NO_SUCH_REQUEST)
    return row


# --- reads ----------------------------------------------------------------------------------


def are_friends(session: Session, a_id: int, b_id: int) -> bool:
    """Whether ``a`` and ``b`` have an accepted friendship (blocks are not considered)."""
    if a_id == b_id:
        return False
    row = _find_pair(session, a_id, b_id)
    return row is not None and row.status == ACCEPTED


def blocked_between(session: Session, a_id: int, b_id: int) -> bool:
    """Whether either of ``a`` and ``b`` has blocked the other."""
    return _has_blocked(session, a_id, b_id) or _has_blocked(session, b_id, a_id)


def access_friend(session: Session, *, actor_id: int, username: str) -> User:
    """The friend's row when the two are friends and neither blocked the other.

    Raises:
        NotFound: the user is missing, not a friend, blocked either way, or the actor.
    """
    user = users.get_by_username(session, username)
    if (
        user is None
        or user.id is None
        or not are_friends(session, actor_id, user.id)
        or blocked_between(session, actor_id, user.id)
    ):
        raise NotFound(NO_SUCH_CONVERSATION)
    return user


def search_users(
    session: Session, *, actor_id: int, query: str, limit: int = 8
) -> list[PublicUser]:
    """Users whose username starts with ``query`` (any case), the exact match first.

    The actor and anyone who blocked the actor are left out; ``limit`` is clamped to 1..20.
    """
    key = users.username_key(query)
    if not key:
        return []
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


def list_requests(session: Session, *, actor_id: int) -> Requests:
    """Pending requests to and from the actor, newest first.

    Requests from users the actor blocked are left out of ``incoming``; the actor's own
    requests are always listed in ``outgoing``, even to someone who blocked them.
    """
    rows = session.exec(
        select(Friendship)
        .where(
            Friendship.status == PENDING,
            or_(col(Friendship.user_low_id) == actor_id, col(Friendship.user_high_id) == actor_id),
            or_(
                col(Friendship.requester_id) == actor_id,
                ~exists().where(
                    col(Block.blocker_id) == actor_id,
                    col(Block.blocked_id) == Friendship.requester_id,
                ),
            ),
        )
        .order_by(col(Friendship.created_at).desc(), col(Friendship.id).desc())
        .execution_options(populate_existing=True)
    ).all()
    people = _public_users(session, (uid for r in rows for uid in (r.user_low_id, r.user_high_id)))
    incoming: list[FriendRequest] = []
    outgoing: list[FriendRequest] = []
    for row in rows:
        assert row.id is not None
        request = FriendRequest(
            id=row.id,
            requester=people[row.requester_id],
            addressee=people[_addressee_id(row)],
            created_at=row.created_at,
        )
        (outgoing if row.requester_id == actor_id else incoming).append(request)
    return Requests(incoming=incoming, outgoing=outgoing)


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


# --- requests -------------------------------------------------------------------------------


def send_request(session: Session, *, actor_id: int, username: str) -> RequestOutcome:
    """Ask ``username`` to be friends; a request from them already waiting is accepted.

    When the target has blocked the actor, the request is stored and reported as pending
    like any other: the target never sees it, and the actor cannot tell.

    Raises:
        NotFound: no such user.
        Invalid: the actor asked themselves.
        Forbidden: the actor blocked the target.
        Conflict: already friends, or a request from the actor is already pending.
    """
    target_id = _require_user(session, username)
    if target_id == actor_id:
        raise Invalid("You cannot send a friend request to yourself.")
    for _ in range(_ATTEMPTS):
        # Re-checked on every attempt: a concurrent block must win over a retried request.
        if _has_blocked(session, actor_id, target_id):
            raise Forbidden("You blocked this user. Unblock them to send a request.")
        existing = _find_pair(session, actor_id, target_id)
        if existing is not None:
            if existing.status == ACCEPTED:
                raise Conflict("You are already friends.")
            if existing.requester_id == actor_id:
                raise Conflict("You already sent a request to this user.")
            # Crossing requests: the target asked first, so this is a yes.
            result = session.exec(
                update(Friendship)
                .where(
                    col(Friendship.id) == existing.id,
                    col(Friendship.status) == PENDING,
                    col(Friendship.requester_id) == target_id,
                )
                .values(status=ACCEPTED, accepted_at=clock.now())
            )
            if result.rowcount == 1:
                session.commit()
                return _outcome(existing, ACCEPTED)
            session.rollback()  # cancelled or changed meanwhile: look again
            continue
        low, high = pairs.ordered(actor_id, target_id)
        row = Friendship(
            user_low_id=low,
            user_high_id=high,
            requester_id=actor_id,
            status=PENDING,
            created_at=clock.now(),
        )
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            # The other side (or another tab) inserted the pair first: apply the rules to it.
            session.rollback()
            continue
        return _outcome(row, PENDING)
    raise Conflict(TRY_AGAIN)


def accept_request(session: Session, *, actor_id: int, request_id: int) -> RequestOutcome:
    """The addressee accepts a pending request: the two become friends.

    Raises:
        NotFound: not a pending request the actor received and can see.
    """
    row = _access_incoming(session, actor_id, request_id)
    result = session.exec(
        update(Friendship)
        .where(col(Friendship.id) == request_id, col(Friendship.status) == PENDING)
        .values(status=ACCEPTED, accepted_at=clock.now())
    )
    if result.rowcount != 1:
        session.rollback()
        raise NotFound(NO_SUCH_REQUEST)
    session.commit()
    return _outcome(row, ACCEPTED)


def decline_request(session: Session, *, actor_id: int, request_id: int) -> RequestOutcome:
    """The addressee declines a pending request; the row is deleted and nobody is told.

    Raises:
        NotFound: not a pending request the actor received and can see.
    """
    row = _access_incoming(session, actor_id, request_id)
    outcome = _outcome(row, DECLINED)
    result = session.exec(
        delete(Friendship).where(
            col(Friendship.id) == request_id, col(Friendship.status) == PENDING
        )
    )
    if result.rowcount != 1:
        session.rollback()
        raise NotFound(NO_SUCH_REQUEST)
    session.commit()
    return outcome


def cancel_request(session: Session, *, actor_id: int, request_id: int) -> RequestOutcome:
    """The requester withdraws a pending request; the row is deleted.

    Raises:
        NotFound: not a pending request sent by the actor.
    """
    row = session.exec(
        select(Friendship)
        .where(Friendship.id == request_id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None or row.status != PENDING or row.requester_id != actor_id:
        raise NotFound(NO_SUCH_REQUEST)
    outcome = _outcome(row, CANCELLED)
    result = session.exec(
        delete(Friendship).where(
            col(Friendship.id) == request_id,
            col(Friendship.status) == PENDING,
            col(Friendship.requester_id) == actor_id,
        )
    )
    if result.rowcount != 1:
        session.rollback()
        raise NotFound(NO_SUCH_REQUEST)
    session.commit()
    return outcome


# --- friendships and blocks -----------------------------------------------------------------


def remove_friend(session: Session, *, actor_id: int, username: str) -> int:
    """End a friendship; returns the former friend's id.

    Raises:
        NotFound: the user is missing or not a friend (one message for both).
    """
    friend_id = _require_user(session, username, NOT_A_FRIEND)
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


def block(session: Session, *, actor_id: int, username: str) -> int:
    """Block a user (idempotent); any friendship or request between the two is deleted.

    Raises:
        NotFound: no such user.
        Invalid: the actor named themselves.
    """
    target_id = _require_user(session, username)
    if target_id == actor_id:
        raise Invalid("You cannot block yourself.")
    for _ in range(_ATTEMPTS):
        low, high = pairs.ordered(actor_id, target_id)
        session.exec(
            delete(Friendship).where(
                col(Friendship.user_low_id) == low, col(Friendship.user_high_id) == high
            )
        )
        if not _has_blocked(session, actor_id, target_id):
            session.add(Block(blocker_id=actor_id, blocked_id=target_id, created_at=clock.now()))
        try:
            session.commit()
        except IntegrityError:
            # Blocked twice at once (two tabs): the other block stands; delete the pair again.
            session.rollback()
            continue
        return target_id
    raise Conflict(TRY_AGAIN)


def unblock(session: Session, *, actor_id: int, username: str) -> int:
    """Lift the actor's block on a user (idempotent); returns their id.

    Raises:
        NotFound: no such user.
    """
    target_id = _require_user(session, username)
    session.exec(
        delete(Block).where(col(Block.blocker_id) == actor_id, col(Block.blocked_id) == target_id)
    )
    session.commit()
    return target_id
