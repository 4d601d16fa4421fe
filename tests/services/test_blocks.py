"""Blocks: blocking, unblocking, the list of blocked users and ``blocked_between``.

Every refusal also checks that nothing changed: the friendship and block rows are compared
before and after, read through the same session so an uncommitted write would show too.
Users are registered through the real service (an argon2 hash each), so tests keep to a few.
"""

from __future__ import annotations

from sqlmodel import select

from iris_reflex.errors import Invalid, NotFound
from iris_reflex.models import Block
from iris_reflex.services import blocks, friend_requests, friends
from tests.services.builders import befriend, register
from tests.services.relations import friendship_rows, names, refused, snapshot

# --- blocking -------------------------------------------------------------------------------


def test_blocking_a_friend_ends_the_friendship(session, frozen_clock):
    ada, bob = register(session, "ada", "bob")
    befriend(session, ada, bob, "bob")

    assert blocks.block(session, actor_id=bob, username="ADA") == ada

    assert friendship_rows(session) == []
    assert snapshot(session)[1] == [(bob, ada)]
    [row] = session.exec(select(Block)).all()
    assert row.created_at == frozen_clock.current
    assert friends.list_friends(session, actor_id=ada) == []
    assert blocks.blocked_between(session, ada, bob)


def test_blocking_deletes_a_pending_request_in_either_direction(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    friend_requests.send_request(session, actor_id=ada, username="bob")
    friend_requests.send_request(session, actor_id=cat, username="ada")

    blocks.block(session, actor_id=ada, username="bob")
    blocks.block(session, actor_id=ada, username="cat")

    assert friendship_rows(session) == []
    assert friend_requests.list_requests(session, actor_id=bob) == friend_requests.Requests([], [])
    assert friend_requests.list_requests(session, actor_id=cat) == friend_requests.Requests([], [])


def test_blocking_twice_is_harmless(session):
    ada, bob = register(session, "ada", "bob")

    assert blocks.block(session, actor_id=ada, username="bob") == bob
    assert blocks.block(session, actor_id=ada, username="bob") == bob

    assert snapshot(session) == ([], [(ada, bob)])


def test_a_block_that_races_another_block_keeps_one_row(session, monkeypatch):
    ada, bob = register(session, "ada", "bob")
    blocks.block(session, actor_id=ada, username="bob")
    real_has_blocked = blocks.has_blocked
    calls = []

    def misses_once(*args: int) -> bool:
        calls.append(args)
        return False if len(calls) == 1 else real_has_blocked(*args)

    monkeypatch.setattr(blocks, "has_blocked", misses_once)

    assert blocks.block(session, actor_id=ada, username="bob") == bob

    assert len(calls) == 2
    assert snapshot(session) == ([], [(ada, bob)])


def test_you_cannot_block_yourself(session):
    [ada] = register(session, "ada")

    refused(
        session,
        Invalid,
        "You cannot block yourself.",
        lambda: blocks.block(session, actor_id=ada, username="Ada"),
    )


def test_blocking_a_missing_user_is_not_found(session):
    [ada] = register(session, "ada")

    refused(
        session,
        NotFound,
        "No user with that username.",
        lambda: blocks.block(session, actor_id=ada, username="nobody"),
    )


def test_unblocking_lifts_only_your_own_block(session):
    ada, bob = register(session, "ada", "bob")
    blocks.block(session, actor_id=ada, username="bob")
    blocks.block(session, actor_id=bob, username="ada")

    assert blocks.unblock(session, actor_id=ada, username="BOB") == bob

    assert snapshot(session)[1] == [(bob, ada)]
    assert blocks.list_blocked(session, actor_id=ada) == []
    assert blocks.blocked_between(session, ada, bob)


def test_after_unblocking_a_request_can_be_sent_again(session):
    ada, _bob = register(session, "ada", "bob")
    blocks.block(session, actor_id=ada, username="bob")

    blocks.unblock(session, actor_id=ada, username="bob")

    assert friend_requests.send_request(session, actor_id=ada, username="bob").status == "pending"


def test_unblocking_someone_not_blocked_is_harmless(session):
    ada, bob = register(session, "ada", "bob")

    assert blocks.unblock(session, actor_id=ada, username="bob") == bob
    assert blocks.unblock(session, actor_id=ada, username="ada") == ada

    assert snapshot(session) == ([], [])


def test_unblocking_a_missing_user_is_not_found(session):
    [ada] = register(session, "ada")

    refused(
        session,
        NotFound,
        "No user with that username.",
        lambda: blocks.unblock(session, actor_id=ada, username="nobody"),
    )


# --- lists and checks -----------------------------------------------------------------------


def test_blocked_users_are_listed_by_username(session):
    ada, _bob, _cat = register(session, "ada", "Cat", "bob")
    blocks.block(session, actor_id=ada, username="cat")
    blocks.block(session, actor_id=ada, username="bob")

    assert names(blocks.list_blocked(session, actor_id=ada)) == ["bob", "Cat"]
    assert blocks.list_blocked(session, actor_id=_bob) == []


def test_blocked_between_looks_both_ways(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    blocks.block(session, actor_id=ada, username="bob")

    assert blocks.blocked_between(session, ada, bob)
    assert blocks.blocked_between(session, bob, ada)
    assert not blocks.blocked_between(session, ada, cat)
    assert not blocks.blocked_between(session, bob, cat)
