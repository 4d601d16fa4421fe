"""Helpers for the conversation and sending tests: the rows as they are now, a refusal that
changes none of them, and a page of history as ids."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import Session, select

from iris_reflex.errors import DomainError
from iris_reflex.models import Conversation, Message
from iris_reflex.services import conversations


def page(session: Session, actor_id: int, username: str, **kwargs: int | None) -> list[int]:
    """The ids ``list_messages`` returns, in its order."""
    return [
        m.id
        for m in conversations.list_messages(
            session, actor_id=actor_id, username=username, **kwargs
        )
    ]


def message_rows(session: Session) -> list[Message]:
    session.expire_all()
    return list(session.exec(select(Message).order_by(Message.id)).all())


def conversation_rows(session: Session) -> list[Conversation]:
    session.expire_all()
    return list(session.exec(select(Conversation).order_by(Conversation.id)).all())


def snapshot(session: Session) -> tuple[list[tuple], list[tuple]]:
    """Every conversation and message row as this session sees it now."""
    session.expire_all()
    convs = session.exec(
        select(
            Conversation.id,
            Conversation.user_low_id,
            Conversation.user_high_id,
            Conversation.timer_seconds,
            Conversation.created_at,
        ).order_by(Conversation.id)
    ).all()
    messages = session.exec(
        select(
            Message.id,
            Message.conversation_id,
            Message.sender_id,
            Message.recipient_id,
            Message.kind,
            Message.body,
            Message.expires_at,
            Message.read_at,
            Message.deleted_at,
        ).order_by(Message.id)
    ).all()
    return [tuple(r) for r in convs], [tuple(r) for r in messages]


def refused(
    session: Session, error: type[DomainError], message: str, action: Callable[[], object]
) -> None:
    """``action()`` raises ``error`` with ``message`` and changes no row."""
    before = snapshot(session)
    with pytest.raises(error) as caught:
        action()
    assert caught.value.message == message
    assert snapshot(session) == before
