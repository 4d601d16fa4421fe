"""Friend requests, friendships and blocks, announced after commit to both people."""

from __future__ import annotations

from sqlmodel import Session

from iris_reflex.live import outbox
from iris_reflex.live.events import FriendsChanged
from iris_reflex.services import blocks, friend_requests, friends
from iris_reflex.services.friend_requests import RequestOutcome


def _tell(outcome: RequestOutcome, skip_token: str | None) -> RequestOutcome:
    outbox.publish(
        FriendsChanged((outcome.requester_id, outcome.addressee_id)), skip_token=skip_token
    )
    return outcome


def send_request(
    db: Session, *, actor_id: int, username: str, skip_token: str | None = None
) -> RequestOutcome:
    return _tell(friend_requests.send_request(db, actor_id=actor_id, username=username), skip_token)


def accept_request(
    db: Session, *, actor_id: int, request_id: int, skip_token: str | None = None
) -> RequestOutcome:
    return _tell(
        friend_requests.accept_request(db, actor_id=actor_id, request_id=request_id), skip_token
    )


def decline_request(
    db: Session, *, actor_id: int, request_id: int, skip_token: str | None = None
) -> RequestOutcome:
    return _tell(
        friend_requests.decline_request(db, actor_id=actor_id, request_id=request_id), skip_token
    )


def cancel_request(
    db: Session, *, actor_id: int, request_id: int, skip_token: str | None = None
) -> RequestOutcome:
    return _tell(
        friend_requests.cancel_request(db, actor_id=actor_id, request_id=request_id), skip_token
    )


def remove_friend(
    db: Session, *, actor_id: int, username: str, skip_token: str | None = None
) -> int:
    """End a friendship; returns the former friend's id."""
    former = friends.remove_friend(db, actor_id=actor_id, username=username)
    outbox.publish(FriendsChanged((former, actor_id)), skip_token=skip_token)
    return former


def block(db: Session, *, actor_id: int, username: str, skip_token: str | None = None) -> int:
    """Block a user; returns their id. They hear only that the friendship or request ended."""
    blocked = blocks.block(db, actor_id=actor_id, username=username)
    outbox.publish(FriendsChanged((blocked, actor_id)), skip_token=skip_token)
    return blocked


def unblock(db: Session, *, actor_id: int, username: str, skip_token: str | None = None) -> int:
    unblocked = blocks.unblock(db, actor_id=actor_id, username=username)
    outbox.publish(FriendsChanged((unblocked, actor_id)), skip_token=skip_token)
    return unblocked
