"""Friend requests, friendships, blocks, search and the messaging gate.

Every refusal also checks that nothing changed: the friendship and block rows are compared
before and after, read through the same session so an uncommitted write would show too.
Users are registered through the real service (an argon2 hash each), so tests keep to a few.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState
from sqlmodel import Session, col, delete, select

from iris_reflex import clock
from iris_reflex.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from iris_reflex.models import Block, Friendship, User
from iris_reflex.services import friends, pairs, passwords
from iris_reflex.services.users import PublicUser
from tests.services.builders import befriend, register


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


# --- sending a request ----------------------------------------------------------------------


def test_request_is_stored_once_as_an_ordered_pending_pair(session, frozen_clock):
    low, high = register(session, "ada", "bob")

    outcome = friends.send_request(session, actor_id=high, username="ada")

    [row] = friendship_rows(session)
    assert (row.user_low_id, row.user_high_id, row.requester_id) == (low, high, high)
    assert row.status == "pending"
    assert row.created_at == frozen_clock.current
    assert row.accepted_at is None
    assert outcome == friends.RequestOutcome(
        request_id=row.id, status="pending", requester_id=high, addressee_id=low
    )
    assert not friends.are_friends(session, low, high)


def test_request_finds_the_target_in_any_letter_case(session):
    ada, bob = register(session, "Ada", "bob")

    outcome = friends.send_request(session, actor_id=bob, username="  aDA ")

    assert outcome.addressee_id == ada


def test_request_to_a_missing_user_is_not_found(session):
    [ada] = register(session, "ada")

    refused(
        session,
        NotFound,
        "No user with that username.",
        lambda: friends.send_request(session, actor_id=ada, username="nobody"),
    )


def test_no_request_to_yourself(session):
    [ada] = register(session, "ada")

    refused(
        session,
        Invalid,
        "You cannot send a friend request to yourself.",
        lambda: friends.send_request(session, actor_id=ada, username="ADA"),
    )


def test_a_duplicate_request_is_a_conflict(session):
    ada, _bob = register(session, "ada", "bob")
    friends.send_request(session, actor_id=ada, username="bob")

    refused(
        session,
        Conflict,
        "You already sent a request to this user.",
        lambda: friends.send_request(session, actor_id=ada, username="Bob"),
    )


def test_a_request_to_a_friend_is_a_conflict_from_either_side(session):
    ada, bob = register(session, "ada", "bob")
    befriend(session, ada, bob, "bob")

    for actor, target in ((ada, "bob"), (bob, "ada")):
        refused(
            session,
            Conflict,
            "You are already friends.",
            lambda actor=actor, target=target: friends.send_request(
                session, actor_id=actor, username=target
            ),
        )


def test_crossing_requests_become_a_friendship(session, frozen_clock):
    ada, bob = register(session, "ada", "bob")
    first = friends.send_request(session, actor_id=ada, username="bob")
    accepted_at = frozen_clock.advance(minutes=5)

    outcome = friends.send_request(session, actor_id=bob, username="ada")

    assert outcome == friends.RequestOutcome(
        request_id=first.request_id, status="accepted", requester_id=ada, addressee_id=bob
    )
    [row] = friendship_rows(session)
    assert (row.id, row.status, row.requester_id) == (first.request_id, "accepted", ada)
    assert row.accepted_at == accepted_at
    assert friends.are_friends(session, ada, bob)
    assert friends.list_requests(session, actor_id=ada) == friends.Requests([], [])
    assert friends.list_requests(session, actor_id=bob) == friends.Requests([], [])


def test_a_request_to_someone_you_blocked_is_forbidden(session):
    ada, _bob = register(session, "ada", "bob")
    friends.block(session, actor_id=ada, username="bob")

    refused(
        session,
        Forbidden,
        "You blocked this user. Unblock them to send a request.",
        lambda: friends.send_request(session, actor_id=ada, username="bob"),
    )


def test_a_blocked_users_request_looks_sent_but_is_invisible_to_the_blocker(session):
    ada, bob = register(session, "ada", "bob")
    friends.block(session, actor_id=ada, username="bob")

    outcome = friends.send_request(session, actor_id=bob, username="ada")

    # Bob cannot tell: the answer is the ordinary one, and he sees his request as sent.
    assert outcome.status == "pending"
    assert (outcome.requester_id, outcome.addressee_id) == (bob, ada)
    bobs = friends.list_requests(session, actor_id=bob)
    assert [(r.id, r.addressee.username) for r in bobs.outgoing] == [(outcome.request_id, "ada")]
    assert bobs.incoming == []
    # Ada never sees it and cannot act on it, even by guessing its id.
    assert friends.list_requests(session, actor_id=ada) == friends.Requests([], [])
    for act in (friends.accept_request, friends.decline_request):
        refused(
            session,
            NotFound,
            "No such friend request.",
            lambda act=act: act(session, actor_id=ada, request_id=outcome.request_id),
        )
    assert not friends.are_friends(session, ada, bob)


def test_a_request_sent_while_blocked_appears_once_the_block_is_lifted(session):
    ada, bob = register(session, "ada", "bob")
    friends.block(session, actor_id=ada, username="bob")
    sent = friends.send_request(session, actor_id=bob, username="ada")

    friends.unblock(session, actor_id=ada, username="bob")

    assert [r.id for r in friends.list_requests(session, actor_id=ada).incoming] == [
        sent.request_id
    ]


def test_a_request_that_loses_an_insert_race_to_the_same_request_is_a_conflict(session):
    """Another tab sends the same request between the check and the insert: the unique pair
    decides, the loser re-reads the pair and gets the ordinary answer."""
    ada, bob = register(session, "ada", "bob")
    low, high = pairs.ordered(ada, bob)

    def send_elsewhere(*_args: object) -> None:
        with Session(session.get_bind()) as other:
            other.add(
                Friendship(
                    user_low_id=low, user_high_id=high, requester_id=ada, created_at=clock.now()
                )
            )
            other.commit()

    event.listen(session, "before_flush", send_elsewhere, once=True)

    with pytest.raises(Conflict) as caught:
        friends.send_request(session, actor_id=ada, username="bob")

    assert caught.value.message == "You already sent a request to this user."
    assert [(r.requester_id, r.status) for r in friendship_rows(session)] == [(ada, "pending")]


def test_crossing_requests_that_race_on_insert_become_a_friendship(session):
    ada, bob = register(session, "ada", "bob")
    low, high = pairs.ordered(ada, bob)

    def bob_sends_elsewhere(*_args: object) -> None:
        with Session(session.get_bind()) as other:
            other.add(
                Friendship(
                    user_low_id=low, user_high_id=high, requester_id=bob, created_at=clock.now()
                )
            )
            other.commit()

    event.listen(session, "before_flush", bob_sends_elsewhere, once=True)

    outcome = friends.send_request(session, actor_id=ada, username="bob")

    assert (outcome.status, outcome.requester_id, outcome.addressee_id) == ("accepted", bob, ada)
    assert [(r.requester_id, r.status) for r in friendship_rows(session)] == [(bob, "accepted")]


def test_a_crossing_request_cancelled_at_the_same_moment_is_sent_as_a_new_request(session):
    ada, bob = register(session, "ada", "bob")
    bobs = friends.send_request(session, actor_id=bob, username="ada")

    def bob_cancels_elsewhere(state: ORMExecuteState) -> None:
        if state.is_update and not done:
            done.append(True)
            with Session(session.get_bind()) as other:
                other.exec(delete(Friendship).where(col(Friendship.id) == bobs.request_id))
                other.commit()

    done: list[bool] = []
    event.listen(session, "do_orm_execute", bob_cancels_elsewhere)

    outcome = friends.send_request(session, actor_id=ada, username="bob")

    assert (outcome.status, outcome.requester_id) == ("pending", ada)
    assert [(r.requester_id, r.status) for r in friendship_rows(session)] == [(ada, "pending")]


def test_a_request_that_keeps_losing_races_gives_up_with_a_conflict(session, monkeypatch):
    ada, _bob = register(session, "ada", "bob")
    friends.send_request(session, actor_id=ada, username="bob")
    # The pair lookup never sees the row, so every insert collides with it.
    monkeypatch.setattr(friends, "_find_pair", lambda *_args: None)

    refused(
        session,
        Conflict,
        "Someone else changed this at the same moment. Please try again.",
        lambda: friends.send_request(session, actor_id=ada, username="bob"),
    )


# --- accepting, declining, cancelling -------------------------------------------------------


def test_the_addressee_accepts_a_request(session, frozen_clock):
    ada, bob = register(session, "ada", "bob")
    sent = friends.send_request(session, actor_id=ada, username="bob")
    accepted_at = frozen_clock.advance(hours=1)

    outcome = friends.accept_request(session, actor_id=bob, request_id=sent.request_id)

    assert outcome == friends.RequestOutcome(
        request_id=sent.request_id, status="accepted", requester_id=ada, addressee_id=bob
    )
    [row] = friendship_rows(session)
    assert (row.status, row.accepted_at, row.requester_id) == ("accepted", accepted_at, ada)
    assert friends.are_friends(session, ada, bob) and friends.are_friends(session, bob, ada)
    assert names(friends.list_friends(session, actor_id=ada)) == ["bob"]
    assert names(friends.list_friends(session, actor_id=bob)) == ["ada"]


def test_only_the_addressee_can_accept_a_pending_request(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    sent = friends.send_request(session, actor_id=ada, username="bob")
    friended = befriend(session, ada, cat, "cat")

    for actor, request_id in (
        (ada, sent.request_id),  # the requester
        (cat, sent.request_id),  # an outsider
        (bob, sent.request_id + 1000),  # no such id
        (cat, friended),  # already accepted, by the addressee
        (ada, friended),  # already accepted, by the requester
    ):
        refused(
            session,
            NotFound,
            "No such friend request.",
            lambda actor=actor, request_id=request_id: friends.accept_request(
                session, actor_id=actor, request_id=request_id
            ),
        )


def test_accepting_a_request_cancelled_at_the_same_moment_is_not_found(session):
    ada, bob = register(session, "ada", "bob")
    sent = friends.send_request(session, actor_id=ada, username="bob")

    def ada_cancels_elsewhere(state: ORMExecuteState) -> None:
        if state.is_update and not done:
            done.append(True)
            with Session(session.get_bind()) as other:
                friends.cancel_request(other, actor_id=ada, request_id=sent.request_id)

    done: list[bool] = []
    event.listen(session, "do_orm_execute", ada_cancels_elsewhere)

    with pytest.raises(NotFound):
        friends.accept_request(session, actor_id=bob, request_id=sent.request_id)

    assert friendship_rows(session) == []


def test_the_addressee_declines_a_request_and_the_row_is_deleted(session):
    ada, bob = register(session, "ada", "bob")
    sent = friends.send_request(session, actor_id=ada, username="bob")

    outcome = friends.decline_request(session, actor_id=bob, request_id=sent.request_id)

    assert outcome == friends.RequestOutcome(
        request_id=sent.request_id, status="declined", requester_id=ada, addressee_id=bob
    )
    assert friendship_rows(session) == []
    # Declined is not final: Ada may ask again.
    assert friends.send_request(session, actor_id=ada, username="bob").status == "pending"


def test_only_the_addressee_can_decline_a_pending_request(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    sent = friends.send_request(session, actor_id=ada, username="bob")
    friended = befriend(session, ada, cat, "cat")

    for actor, request_id in (
        (ada, sent.request_id),
        (cat, sent.request_id),
        (bob, sent.request_id + 1000),
        (cat, friended),
    ):
        refused(
            session,
            NotFound,
            "No such friend request.",
            lambda actor=actor, request_id=request_id: friends.decline_request(
                session, actor_id=actor, request_id=request_id
            ),
        )


def test_the_requester_cancels_a_request_and_the_row_is_deleted(session):
    ada, bob = register(session, "ada", "bob")
    sent = friends.send_request(session, actor_id=ada, username="bob")

    outcome = friends.cancel_request(session, actor_id=ada, request_id=sent.request_id)

    assert outcome == friends.RequestOutcome(
        request_id=sent.request_id, status="cancelled", requester_id=ada, addressee_id=bob
    )
    assert friendship_rows(session) == []
    assert friends.list_requests(session, actor_id=bob) == friends.Requests([], [])


def test_only_the_requester_can_cancel_a_pending_request(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    sent = friends.send_request(session, actor_id=ada, username="bob")
    friended = befriend(session, ada, cat, "cat")

    for actor, request_id in (
        (bob, sent.request_id),  # the addressee
        (cat, sent.request_id),  # an outsider
        (ada, sent.request_id + 1000),  # no such id
        (ada, friended),  # a friendship is not a request
    ):
        refused(
            session,
            NotFound,
            "No such friend request.",
            lambda actor=actor, request_id=request_id: friends.cancel_request(
                session, actor_id=actor, request_id=request_id
            ),
        )


# --- removing friends -----------------------------------------------------------------------


def test_either_friend_can_remove_the_friendship(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    befriend(session, ada, bob, "bob")
    befriend(session, cat, ada, "ada")

    assert friends.remove_friend(session, actor_id=ada, username="BOB") == bob
    assert friends.remove_friend(session, actor_id=ada, username="cat") == cat

    assert friendship_rows(session) == []
    assert friends.list_friends(session, actor_id=ada) == []
    assert friends.list_friends(session, actor_id=bob) == []


def test_removing_someone_who_is_not_a_friend_is_not_found(session):
    ada, _bob, _cat = register(session, "ada", "bob", "cat")
    friends.send_request(session, actor_id=ada, username="bob")

    for username in ("bob", "cat", "nobody", "ada"):  # pending, stranger, missing, yourself
        refused(
            session,
            NotFound,
            "Not in your friends.",
            lambda username=username: friends.remove_friend(
                session, actor_id=ada, username=username
            ),
        )


# --- blocking -------------------------------------------------------------------------------


def test_blocking_a_friend_ends_the_friendship(session, frozen_clock):
    ada, bob = register(session, "ada", "bob")
    befriend(session, ada, bob, "bob")

    assert friends.block(session, actor_id=bob, username="ADA") == ada

    assert friendship_rows(session) == []
    assert snapshot(session)[1] == [(bob, ada)]
    [row] = session.exec(select(Block)).all()
    assert row.created_at == frozen_clock.current
    assert friends.list_friends(session, actor_id=ada) == []
    assert friends.blocked_between(session, ada, bob)


def test_blocking_deletes_a_pending_request_in_either_direction(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    friends.send_request(session, actor_id=ada, username="bob")
    friends.send_request(session, actor_id=cat, username="ada")

    friends.block(session, actor_id=ada, username="bob")
    friends.block(session, actor_id=ada, username="cat")

    assert friendship_rows(session) == []
    assert friends.list_requests(session, actor_id=bob) == friends.Requests([], [])
    assert friends.list_requests(session, actor_id=cat) == friends.Requests([], [])


def test_blocking_twice_is_harmless(session):
    ada, bob = register(session, "ada", "bob")

    assert friends.block(session, actor_id=ada, username="bob") == bob
    assert friends.block(session, actor_id=ada, username="bob") == bob

    assert snapshot(session) == ([], [(ada, bob)])


def test_a_block_that_races_another_block_keeps_one_row(session, monkeypatch):
    ada, bob = register(session, "ada", "bob")
    friends.block(session, actor_id=ada, username="bob")
    real_has_blocked = friends._has_blocked
    calls = []

    def misses_once(*args: int) -> bool:
        calls.append(args)
        return False if len(calls) == 1 else real_has_blocked(*args)

    monkeypatch.setattr(friends, "_has_blocked", misses_once)

    assert friends.block(session, actor_id=ada, username="bob") == bob

    assert len(calls) == 2
    assert snapshot(session) == ([], [(ada, bob)])


def test_you_cannot_block_yourself(session):
    [ada] = register(session, "ada")

    refused(
        session,
        Invalid,
        "You cannot block yourself.",
        lambda: friends.block(session, actor_id=ada, username="Ada"),
    )


def test_blocking_a_missing_user_is_not_found(session):
    [ada] = register(session, "ada")

    refused(
        session,
        NotFound,
        "No user with that username.",
        lambda: friends.block(session, actor_id=ada, username="nobody"),
    )


def test_unblocking_lifts_only_your_own_block(session):
    ada, bob = register(session, "ada", "bob")
    friends.block(session, actor_id=ada, username="bob")
    friends.block(session, actor_id=bob, username="ada")

    assert friends.unblock(session, actor_id=ada, username="BOB") == bob

    assert snapshot(session)[1] == [(bob, ada)]
    assert friends.list_blocked(session, actor_id=ada) == []
    assert friends.blocked_between(session, ada, bob)


def test_after_unblocking_a_request_can_be_sent_again(session):
    ada, _bob = register(session, "ada", "bob")
    friends.block(session, actor_id=ada, username="bob")

    friends.unblock(session, actor_id=ada, username="bob")

    assert friends.send_request(session, actor_id=ada, username="bob").status == "pending"


def test_unblocking_someone_not_blocked_is_harmless(session):
    ada, bob = register(session, "ada", "bob")

    assert friends.unblock(session, actor_id=ada, username="bob") == bob
    assert friends.unblock(session, actor_id=ada, username="ada") == ada

    assert snapshot(session) == ([], [])


def test_unblocking_a_missing_user_is_not_found(session):
    [ada] = register(session, "ada")

    refused(
        session,
        NotFound,
        "No user with that username.",
        lambda: friends.unblock(session, actor_id=ada, username="nobody"),
    )


# --- lists and checks -----------------------------------------------------------------------


def test_friends_are_listed_by_username_regardless_of_case(session):
    ada, bob, cat, dan = register(session, "ada", "Bob", "cat", "Dan")
    befriend(session, ada, dan, "dan")
    befriend(session, cat, ada, "ada")
    befriend(session, ada, bob, "bob")

    assert names(friends.list_friends(session, actor_id=ada)) == ["Bob", "cat", "Dan"]
    assert names(friends.list_friends(session, actor_id=bob)) == ["ada"]


def test_pending_requests_are_not_friends(session):
    ada, bob = register(session, "ada", "bob")
    friends.send_request(session, actor_id=ada, username="bob")

    assert friends.list_friends(session, actor_id=ada) == []
    assert not friends.are_friends(session, ada, bob)
    assert not friends.are_friends(session, ada, ada)


def test_requests_are_listed_newest_first_on_each_side(session, frozen_clock):
    ada, bob, cat, dan = register(session, "ada", "bob", "cat", "dan")
    to_bob = friends.send_request(session, actor_id=ada, username="bob")
    cat_sent_at = frozen_clock.advance(minutes=1)
    from_cat = friends.send_request(session, actor_id=cat, username="ada")
    frozen_clock.advance(minutes=1)
    to_dan = friends.send_request(session, actor_id=ada, username="dan")
    frozen_clock.advance(minutes=1)
    from_bob_to_dan = friends.send_request(session, actor_id=bob, username="dan")

    ada_sees = friends.list_requests(session, actor_id=ada)
    dan_sees = friends.list_requests(session, actor_id=dan)

    assert [r.id for r in ada_sees.outgoing] == [to_dan.request_id, to_bob.request_id]
    assert [r.id for r in ada_sees.incoming] == [from_cat.request_id]
    [incoming] = ada_sees.incoming
    assert incoming.requester == PublicUser(id=cat, username="cat", display_name="cat")
    assert incoming.addressee == PublicUser(id=ada, username="ada", display_name="ada")
    assert incoming.created_at == cat_sent_at
    assert [r.id for r in dan_sees.incoming] == [from_bob_to_dan.request_id, to_dan.request_id]
    assert dan_sees.outgoing == []


def test_blocked_users_are_listed_by_username(session):
    ada, _bob, _cat = register(session, "ada", "Cat", "bob")
    friends.block(session, actor_id=ada, username="cat")
    friends.block(session, actor_id=ada, username="bob")

    assert names(friends.list_blocked(session, actor_id=ada)) == ["bob", "Cat"]
    assert friends.list_blocked(session, actor_id=_bob) == []


def test_other_users_are_shown_only_by_their_public_profile(session):
    ada, _bob = register(session, "ada", "bob")
    friends.send_request(session, actor_id=ada, username="bob")

    [request] = friends.list_requests(session, actor_id=ada).outgoing

    # The profile people choose to show; never the hash, settings or the picture's storage key
    # (only a fingerprint that changes with it: the picture is served to friends alone).
    fields = [f.name for f in dataclasses.fields(request.addressee)]
    assert fields == ["id", "username", "display_name", "status_message", "avatar_version"]
    assert request.addressee.avatar_version is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.id = 0  # type: ignore[misc]


def test_blocked_between_looks_both_ways(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    friends.block(session, actor_id=ada, username="bob")

    assert friends.blocked_between(session, ada, bob)
    assert friends.blocked_between(session, bob, ada)
    assert not friends.blocked_between(session, ada, cat)
    assert not friends.blocked_between(session, bob, cat)


# --- search ---------------------------------------------------------------------------------


def test_search_puts_the_exact_match_first_then_prefixes_by_username(session):
    ada, *_ = register(session, "ada", "Bob_2", "bob", "bobby")

    found = friends.search_users(session, actor_id=ada, query="BOB")

    assert names(found) == ["bob", "Bob_2", "bobby"]
    assert all(isinstance(person, PublicUser) for person in found)


def test_search_without_an_exact_match_lists_prefix_matches_only(session):
    ada, *_ = register(session, "ada", "bobby", "abby", "Bob_2")

    assert names(friends.search_users(session, actor_id=ada, query=" bo ")) == ["Bob_2", "bobby"]


def test_search_returns_at_most_the_limit_clamped_to_1_through_20(session, monkeypatch):
    # Hashing is not what this test is about: 22 argon2 hashes per database would be slow.
    monkeypatch.setattr(passwords, "hash_password", lambda _password: "not-a-real-hash")
    [ada] = register(session, "ada")
    register(session, *(f"user{n:02d}" for n in range(21)))

    def count(limit: int) -> int:
        return len(friends.search_users(session, actor_id=ada, query="user", limit=limit))

    assert count(3) == 3
    assert count(0) == 1
    assert count(-5) == 1
    assert count(100) == 20
    assert len(friends.search_users(session, actor_id=ada, query="user")) == 8
    assert names(friends.search_users(session, actor_id=ada, query="user", limit=2)) == [
        "user00",
        "user01",
    ]


def test_search_treats_underscore_percent_and_backslash_literally(session):
    ada, *_ = register(session, "ada", "a_c", "abc", "a.c")

    assert names(friends.search_users(session, actor_id=ada, query="a_")) == ["a_c"]
    assert friends.search_users(session, actor_id=ada, query="a%") == []
    assert friends.search_users(session, actor_id=ada, query="%") == []
    assert friends.search_users(session, actor_id=ada, query="a\\") == []
    assert friends.search_users(session, actor_id=ada, query="_") == []


def test_search_leaves_out_yourself_and_anyone_who_blocked_you(session):
    ann, anna, annie = register(session, "ann", "anna", "annie")
    friends.block(session, actor_id=anna, username="ann")
    friends.block(session, actor_id=ann, username="annie")

    # Ann still finds Annie, whom she blocked (to unblock her), but never Anna.
    assert names(friends.search_users(session, actor_id=ann, query="ann")) == ["annie"]
    # Anna blocked Ann but can still find her.
    assert names(friends.search_users(session, actor_id=anna, query="ann")) == ["ann", "annie"]
    # Annie was blocked by Ann, so only Anna is left for her.
    assert names(friends.search_users(session, actor_id=annie, query="ann")) == ["anna"]


@pytest.mark.parametrize("query", ["", "   ", "\t"])
def test_a_blank_search_finds_nobody(session, query):
    ada, _bob = register(session, "ada", "bob")

    assert friends.search_users(session, actor_id=ada, query=query) == []


# --- the messaging gate ---------------------------------------------------------------------


def test_access_friend_returns_the_friends_row(session):
    ada, bob = register(session, "ada", "Bob")
    befriend(session, ada, bob, "bob")

    friend = friends.access_friend(session, actor_id=ada, username="BOB")

    assert isinstance(friend, User)
    assert (friend.id, friend.username) == (bob, "Bob")


def test_access_friend_refuses_everyone_else_with_one_message(session):
    ada, bob, cat, _dan = register(session, "ada", "bob", "cat", "dan")
    befriend(session, ada, bob, "bob")
    befriend(session, ada, cat, "cat")
    friends.send_request(session, actor_id=ada, username="dan")
    # A friendship left beside a block (as after a race with block()) still gives no access.
    session.add(Block(blocker_id=cat, blocked_id=ada, created_at=clock.now()))
    session.commit()
    friends.block(session, actor_id=ada, username="bob")

    for username in ("bob", "cat", "dan", "nobody", "ada"):
        refused(
            session,
            NotFound,
            "No such conversation.",
            lambda username=username: friends.access_friend(
                session, actor_id=ada, username=username
            ),
        )
    assert friends.list_friends(session, actor_id=ada) == []
