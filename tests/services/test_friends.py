"""Friendships: removing a friend, the list of friends, search and the messaging gate.

Every refusal also checks that nothing changed: the friendship and block rows are compared
before and after, read through the same session so an uncommitted write would show too.
Users are registered through the real service (an argon2 hash each), so tests keep to a few.
"""

from __future__ import annotations

import pytest

from iris_reflex import clock
from iris_reflex.errors import NotFound
from iris_reflex.models import Block, User
from iris_reflex.services import blocks, friend_requests, friends, passwords
from iris_reflex.services.users import PublicUser
from tests.services.builders import befriend, register
from tests.services.relations import friendship_rows, names, refused

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
    friend_requests.send_request(session, actor_id=ada, username="bob")

    for username in ("bob", "cat", "nobody", "ada"):  # pending, stranger, missing, yourself
        refused(
            session,
            NotFound,
            "Not in your friends.",
            lambda username=username: friends.remove_friend(
                session, actor_id=ada, username=username
            ),
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
    friend_requests.send_request(session, actor_id=ada, username="bob")

    assert friends.list_friends(session, actor_id=ada) == []
    assert not friends.are_friends(session, ada, bob)
    assert not friends.are_friends(session, ada, ada)


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
    blocks.block(session, actor_id=anna, username="ann")
    blocks.block(session, actor_id=ann, username="annie")

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
    friend_requests.send_request(session, actor_id=ada, username="dan")
    # A friendship left beside a block (as after a race with block()) still gives no access.
    session.add(Block(blocker_id=cat, blocked_id=ada, created_at=clock.now()))
    session.commit()
    blocks.block(session, actor_id=ada, username="bob")

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
