"""Friend requests: sending, accepting, declining and cancelling them, and listing them.

Why it is built this way:
- A request is the pair's one ``friendships`` row with status ``pending``; accepting flips it
  to ``accepted``; declining and cancelling delete it. Two requests sent at the same moment
  collide on the unique constraint: the loser rolls back, reads the pair again and applies
  the same rules, so crossing requests become a friendship.
- A block is never announced. The blocked user can still send a request and sees it as
  outgoing; the blocker simply never sees it (it is filtered out when listed and cannot be
  accepted or declined).
- Every write is one transaction committed here; state transitions are conditional updates
  and deletes (``WHERE status = 'pending'``), so a request changed by someone else in the
  meantime is refused instead of overwritten. Other users are returned only as
  ``PublicUser`` (id, username, display name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select, update

from iris_reflex import clock
from iris_reflex.errors import Conflict, Forbidden, Invalid, NotFound
from iris_reflex.models import Block, Friendship, FriendshipStatus, User
from iris_reflex.services import blocks, friends, limits, pairs, users
from iris_reflex.services.users import PublicUser

PENDING = FriendshipStatus.PENDING.value
ACCEPTED = FriendshipStatus.ACCEPTED.value
DECLINED = "declined"
CANCELLED = "cancelled"

NO_SUCH_REQUEST = "No such friend request."


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
        or blocks.has_blocked(session, actor_id, row.requester_id)
    ):
        raise NotFound(NO_SUCH_REQUEST)
    return row


# --- reads ----------------------------------------------------------------------------------


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


# --- writes ---------------------------------------------------------------------------------


def send_request(session: Session, *, actor_id: int, username: str) -> RequestOutcome:
    """Ask ``username`` to be friends; a request from them already waiting is accepted.

    When the target has blocked the actor, the request is stored and reported as pending
    like any other: the target never sees it, and the actor cannot tell.

    Raises:
        NotFound: no such user.
        Invalid: the actor asked themselves.
        Forbidden: the actor blocked the target.
        Conflict: already friends, or a request from the actor is already pending.
        Throttled: the actor sent more than ``limits.friend_requests`` recently (every
            attempt counts, so sending and cancelling cannot push to someone at any rate).
    """
    limits.hit(session, limits.friend_requests(), str(actor_id))
    target_id = users.require_id(session, username)
    if target_id == actor_id:
        raise Invalid("You cannot send a friend request to yourself.")
    for _ in range(pairs.ATTEMPTS):
        # Re-checked on every attempt: a concurrent block must win over a retried request.
        if blocks.has_blocked(session, actor_id, target_id):
            raise Forbidden("You blocked this user. Unblock them to send a request.")
        existing = friends.find_pair(session, actor_id, target_id)
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
    raise Conflict(pairs.TRY_AGAIN)


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
