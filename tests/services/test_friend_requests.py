"""Friend requests: sending, accepting, declining, cancelling and listing them.

Every refusal also checks that nothing changed: the friendship and block rows are compared
before and after, read through the same session so an uncommitted write would show too.
Users are registered through the real service (an argon2 hash each), so tests keep to a few.
"""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState
from sqlmodel import Session, col, delete

from iris_reflex import clock
from iris_reflex.errors import Conflict, Forbidden, Invalid, NotFound
from iris_reflex.models import Friendship
from iris_reflex.services import blocks, friend_requests, friends, pairs
from iris_reflex.services.users import PublicUser
from tests.services.builders import befriend, register
from tests.services.relations import friendship_rows, names, refused

# --- sending a request ----------------------------------------------------------------------


def test_request_is_stored_once_as_an_ordered_pending_pair(session, frozen_clock):
    low, high = register(session, "ada", "bob")

    outcome = friend_requests.send_request(session, actor_id=high, username="ada")

    [row] = friendship_rows(session)
    assert (row.user_low_id, row.user_high_id, row.requester_id) == (low, high, high)
    assert row.status == "pending"
    assert row.created_at == frozen_clock.current
    assert row.accepted_at is None
    assert outcome == friend_requests.RequestOutcome(
        request_id=row.id, status="pending", requester_id=high, addressee_id=low
    )
    assert not friends.are_friends(session, low, high)


def test_request_finds_the_target_in_any_letter_case(session):
    ada, bob = register(session, "Ada", "bob")

    outcome = friend_requests.send_request(session, actor_id=bob, username="  aDA ")

    assert outcome.addressee_id == ada


def test_request_to_a_missing_user_is_not_found(session):
    [ada] = register(session, "ada")

    refused(
        session,
        NotFound,
        "No user with that username.",
        lambda: friend_requests.send_request(session, actor_id=ada, username="nobody"),
    )


def test_no_request_to_yourself(session):
    [ada] = register(session, "ada")

    refused(
        session,
        Invalid,
        "You cannot send a friend request to yourself.",
        lambda: friend_requests.send_request(session, actor_id=ada, username="ADA"),
    )


def test_a_duplicate_request_is_a_conflict(session):
    ada, _bob = register(session, "ada", "bob")
    friend_requests.send_request(session, actor_id=ada, username="bob")

    refused(
        session,
        Conflict,
        "You already sent a request to this user.",
        lambda: friend_requests.send_request(session, actor_id=ada, username="Bob"),
    )


def test_a_request_to_a_friend_is_a_conflict_from_either_side(session):
    ada, bob = register(session, "ada", "bob")
    befriend(session, ada, bob, "bob")

    for actor, target in ((ada, "bob"), (bob, "ada")):
        refused(
            session,
            Conflict,
            "You are already friends.",
            lambda actor=actor, target=target: friend_requests.send_request(
                session, actor_id=actor, username=target
            ),
        )


def test_crossing_requests_become_a_friendship(session, frozen_clock):
    ada, bob = register(session, "ada", "bob")
    first = friend_requests.send_request(session, actor_id=ada, username="bob")
    accepted_at = frozen_clock.advance(minutes=5)

    outcome = friend_requests.send_request(session, actor_id=bob, username="ada")

    assert outcome == friend_requests.RequestOutcome(
        request_id=first.request_id, status="accepted", requester_id=ada, addressee_id=bob
    )
    [row] = friendship_rows(session)
    assert (row.id, row.status, row.requester_id) == (first.request_id, "accepted", ada)
    assert row.accepted_at == accepted_at
    assert friends.are_friends(session, ada, bob)
    assert friend_requests.list_requests(session, actor_id=ada) == friend_requests.Requests([], [])
    assert friend_requests.list_requests(session, actor_id=bob) == friend_requests.Requests([], [])


def test_a_request_to_someone_you_blocked_is_forbidden(session):
    ada, _bob = register(session, "ada", "bob")
    blocks.block(session, actor_id=ada, username="bob")

    refused(
        session,
        Forbidden,
        "You blocked this user. Unblock them to send a request.",
        lambda: friend_requests.send_request(session, actor_id=ada, username="bob"),
    )


def test_a_blocked_users_request_looks_sent_but_is_invisible_to_the_blocker(session):
    ada, bob = register(session, "ada", "bob")
    blocks.block(session, actor_id=ada, username="bob")

    outcome = friend_requests.send_request(session, actor_id=bob, username="ada")

    # Bob cannot tell: the answer is the ordinary one, and he sees his request as sent.
    assert outcome.status == "pending"
    assert (outcome.requester_id, outcome.addressee_id) == (bob, ada)
    bobs = friend_requests.list_requests(session, actor_id=bob)
    assert [(r.id, r.addressee.username) for r in bobs.outgoing] == [(outcome.request_id, "ada")]
    assert bobs.incoming == []
    # Ada never sees it and cannot act on it, even by guessing its id.
    assert friend_requests.list_requests(session, actor_id=ada) == friend_requests.Requests([], [])
    for act in (friend_requests.accept_request, friend_requests.decline_request):
        refused(
            session,
            NotFound,
            "No such friend request.",
            lambda act=act: act(session, actor_id=ada, request_id=outcome.request_id),
        )
    assert not friends.are_friends(session, ada, bob)


def test_a_request_sent_while_blocked_appears_once_the_block_is_lifted(session):
    ada, bob = register(session, "ada", "bob")
    blocks.block(session, actor_id=ada, username="bob")
    sent = friend_requests.send_request(session, actor_id=bob, username="ada")

    blocks.unblock(session, actor_id=ada, username="bob")

    assert [r.id for r in friend_requests.list_requests(session, actor_id=ada).incoming] == [
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
        friend_requests.send_request(session, actor_id=ada, username="bob")

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

    outcome = friend_requests.send_request(session, actor_id=ada, username="bob")

    assert (outcome.status, outcome.requester_id, outcome.addressee_id) == ("accepted", bob, ada)
    assert [(r.requester_id, r.status) for r in friendship_rows(session)] == [(bob, "accepted")]


def test_a_crossing_request_cancelled_at_the_same_moment_is_sent_as_a_new_request(session):
    ada, bob = register(session, "ada", "bob")
    bobs = friend_requests.send_request(session, actor_id=bob, username="ada")

    def bob_cancels_elsewhere(state: ORMExecuteState) -> None:
        if state.is_update and not done:
            done.append(True)
            with Session(session.get_bind()) as other:
                other.exec(delete(Friendship).where(col(Friendship.id) == bobs.request_id))
                other.commit()

    done: list[bool] = []
    event.listen(session, "do_orm_execute", bob_cancels_elsewhere)

    outcome = friend_requests.send_request(session, actor_id=ada, username="bob")

    assert (outcome.status, outcome.requester_id) == ("pending", ada)
    assert [(r.requester_id, r.status) for r in friendship_rows(session)] == [(ada, "pending")]


def test_a_request_that_keeps_losing_races_gives_up_with_a_conflict(session, monkeypatch):
    ada, _bob = register(session, "ada", "bob")
    friend_requests.send_request(session, actor_id=ada, username="bob")
    # The pair lookup never sees the row, so every insert collides with it.
    monkeypatch.setattr(friends, "find_pair", lambda *_args: None)

    refused(
        session,
        Conflict,
        "Someone else changed this at the same moment. Please try again.",
        lambda: friend_requests.send_request(session, actor_id=ada, username="bob"),
    )


# --- accepting, declining, cancelling -------------------------------------------------------


def test_the_addressee_accepts_a_request(session, frozen_clock):
    ada, bob = register(session, "ada", "bob")
    sent = friend_requests.send_request(session, actor_id=ada, username="bob")
    accepted_at = frozen_clock.advance(hours=1)

    outcome = friend_requests.accept_request(session, actor_id=bob, request_id=sent.request_id)

    assert outcome == friend_requests.RequestOutcome(
        request_id=sent.request_id, status="accepted", requester_id=ada, addressee_id=bob
    )
    [row] = friendship_rows(session)
    assert (row.status, row.accepted_at, row.requester_id) == ("accepted", accepted_at, ada)
    assert friends.are_friends(session, ada, bob) and friends.are_friends(session, bob, ada)
    assert names(friends.list_friends(session, actor_id=ada)) == ["bob"]
    assert names(friends.list_friends(session, actor_id=bob)) == ["ada"]


def test_only_the_addressee_can_accept_a_pending_request(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    sent = friend_requests.send_request(session, actor_id=ada, username="bob")
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
            lambda actor=actor, request_id=request_id: friend_requests.accept_request(
                session, actor_id=actor, request_id=request_id
            ),
        )


def test_accepting_a_request_cancelled_at_the_same_moment_is_not_found(session):
    ada, bob = register(session, "ada", "bob")
    sent = friend_requests.send_request(session, actor_id=ada, username="bob")

    def ada_cancels_elsewhere(state: ORMExecuteState) -> None:
        if state.is_update and not done:
            done.append(True)
            with Session(session.get_bind()) as other:
                friend_requests.cancel_request(other, actor_id=ada, request_id=sent.request_id)

    done: list[bool] = []
    event.listen(session, "do_orm_execute", ada_cancels_elsewhere)

    with pytest.raises(NotFound):
        friend_requests.accept_request(session, actor_id=bob, request_id=sent.request_id)

    assert friendship_rows(session) == []


def test_the_addressee_declines_a_request_and_the_row_is_deleted(session):
    ada, bob = register(session, "ada", "bob")
    sent = friend_requests.send_request(session, actor_id=ada, username="bob")

    outcome = friend_requests.decline_request(session, actor_id=bob, request_id=sent.request_id)

    assert outcome == friend_requests.RequestOutcome(
        request_id=sent.request_id, status="declined", requester_id=ada, addressee_id=bob
    )
    assert friendship_rows(session) == []
    # Declined is not final: Ada may ask again.
    assert friend_requests.send_request(session, actor_id=ada, username="bob").status == "pending"


def test_only_the_addressee_can_decline_a_pending_request(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    sent = friend_requests.send_request(session, actor_id=ada, username="bob")
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
            lambda actor=actor, request_id=request_id: friend_requests.decline_request(
                session, actor_id=actor, request_id=request_id
            ),
        )


def test_the_requester_cancels_a_request_and_the_row_is_deleted(session):
    ada, bob = register(session, "ada", "bob")
    sent = friend_requests.send_request(session, actor_id=ada, username="bob")

    outcome = friend_requests.cancel_request(session, actor_id=ada, request_id=sent.request_id)

    assert outcome == friend_requests.RequestOutcome(
        request_id=sent.request_id, status="cancelled", requester_id=ada, addressee_id=bob
    )
    assert friendship_rows(session) == []
    assert friend_requests.list_requests(session, actor_id=bob) == friend_requests.Requests([], [])


def test_only_the_requester_can_cancel_a_pending_request(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    sent = friend_requests.send_request(session, actor_id=ada, username="bob")
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
            lambda actor=actor, request_id=request_id: friend_requests.cancel_request(
                session, actor_id=actor, request_id=request_id
            ),
        )


# --- lists ----------------------------------------------------------------------------------


def test_requests_are_listed_newest_first_on_each_side(session, frozen_clock):
    ada, bob, cat, dan = register(session, "ada", "bob", "cat", "dan")
    to_bob = friend_requests.send_request(session, actor_id=ada, username="bob")
    cat_sent_at = frozen_clock.advance(minutes=1)
    from_cat = friend_requests.send_request(session, actor_id=cat, username="ada")
    frozen_clock.advance(minutes=1)
    to_dan = friend_requests.send_request(session, actor_id=ada, username="dan")
    frozen_clock.advance(minutes=1)
    from_bob_to_dan = friend_requests.send_request(session, actor_id=bob, username="dan")

    ada_sees = friend_requests.list_requests(session, actor_id=ada)
    dan_sees = friend_requests.list_requests(session, actor_id=dan)

    assert [r.id for r in ada_sees.outgoing] == [to_dan.request_id, to_bob.request_id]
    assert [r.id for r in ada_sees.incoming] == [from_cat.request_id]
    [incoming] = ada_sees.incoming
    assert incoming.requester == PublicUser(id=cat, username="cat", display_name="cat")
    assert incoming.addressee == PublicUser(id=ada, username="ada", display_name="ada")
    assert incoming.created_at == cat_sent_at
    assert [r.id for r in dan_sees.incoming] == [from_bob_to_dan.request_id, to_dan.request_id]
    assert dan_sees.outgoing == []


def test_other_users_are_shown_only_by_their_public_profile(session):
    ada, _bob = register(session, "ada", "bob")
    friend_requests.send_request(session, actor_id=ada, username="bob")

    [request] = friend_requests.list_requests(session, actor_id=ada).outgoing

    # The profile people choose to show; never the hash, settings or the picture's storage key
    # (only a fingerprint that changes with it: the picture is served to friends alone).
    fields = [f.name for f in dataclasses.fields(request.addressee)]
    assert fields == ["id", "username", "display_name", "status_message", "avatar_version"]
    assert request.addressee.avatar_version is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.id = 0  # type: ignore[misc]
