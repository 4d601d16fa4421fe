"""Test data built through the real services (never by writing rows directly)."""

from __future__ import annotations

from sqlmodel import Session

from iris_reflex.services import conversations, friend_requests, sending, users
from iris_reflex.services.message_views import MessageView

PASSWORD = "correct horse"


def register(session: Session, *names: str) -> list[int]:
    """Register these users; their ids in the same order."""
    ids = []
    for name in names:
        user = users.check_register(session, username=name, password=PASSWORD, ip="192.0.2.1")
        assert user.id is not None
        ids.append(user.id)
    return ids


def befriend(session: Session, a_id: int, b_id: int, b_name: str) -> int:
    """Make ``a`` and ``b`` friends through the service; the friendship row's id."""
    sent = friend_requests.send_request(session, actor_id=a_id, username=b_name)
    friend_requests.accept_request(session, actor_id=b_id, request_id=sent.request_id)
    return sent.request_id


def friends_ada_and_bob(session: Session) -> tuple[int, int]:
    """Two registered friends, ``ada`` and ``bob``."""
    ada, bob = register(session, "ada", "bob")
    befriend(session, ada, bob, "bob")
    return ada, bob


def unread_total(session: Session, actor_id: int) -> int:
    """Unread, visible messages in the conversations the actor can open (the sidebar's sum)."""
    return sum(s.unread for s in conversations.list_conversations(session, actor_id=actor_id))


def send(
    session: Session, sender_id: int, to: str, body: str = "hi", **kwargs: int | str | None
) -> MessageView:
    """Send through the service; the sender's view of the stored message."""
    return sending.check_send_message(
        session, actor_id=sender_id, username=to, body=body, **kwargs
    ).message
