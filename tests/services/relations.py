"""Helpers for the friendship, friend-request and block tests: the rows as they are now, and
a refusal that changes none of them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import Session, select

from iris_reflex.errors import DomainError
from iris_reflex.models import Block, Friendship
from iris_reflex.services.users import PublicUser


def snapshot(session: Session) -> tuple[list[tuple], list[tuple]]:
    """Every friendship and block row as this session sees it now."""
    session.expire_all()
    pairs = session.exec(
        select(
            Friendship.id,
            Friendship.user_low_id,
            Friendship.user_high_id,
            Friendship.requester_id,
            Friendship.status,
            Friendship.accepted_at,
        ).order_by(Friendship.id)
    ).all()
    blocks = session.exec(select(Block.blocker_id, Block.blocked_id).order_by(Block.id)).all()
    return [tuple(row) for row in pairs], [tuple(row) for row in blocks]


def friendship_rows(session: Session) -> list[Friendship]:
    session.expire_all()
    return list(session.exec(select(Friendship).order_by(Friendship.id)).all())


def names(people: list[PublicUser]) -> list[str]:
    return [person.username for person in people]


def refused(
    session: Session, error: type[DomainError], message: str, action: Callable[[], object]
) -> None:
    """``action()`` raises ``error`` with ``message`` and changes no row."""
    before = snapshot(session)
    with pytest.raises(error) as caught:
        action()
    assert caught.value.message == message
    assert snapshot(session) == before
