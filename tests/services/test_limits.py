"""Rate limits: friend requests per sender, registrations per address, searches per user,
and the shared counter under them (one row per key, counted in one statement).

The test suite runs with generous limits (``tests/conftest.py``); each test here sets small
ones. Time is the frozen clock, so window ends are exact.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlmodel import Session, col, func, select

from iris_reflex.db import engine_for
from iris_reflex.errors import Throttled
from iris_reflex.models import Friendship, RateCounter, User
from iris_reflex.services import friend_requests, friends, limits, users
from iris_reflex.settings import get_settings
from tests.services.builders import PASSWORD, register

pytestmark = pytest.mark.usefixtures("cheap_hash")

IP = "198.51.100.7"
OTHER_IP = "203.0.113.9"


def rows(session: Session, model: type) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model)).one()


def refused(call, *args, **kwargs) -> Throttled:
    with pytest.raises(Throttled) as caught:
        call(*args, **kwargs)
    return caught.value


# --- friend requests ----------------------------------------------------------------------


def test_sending_and_cancelling_requests_is_limited_per_sender(session, frozen_clock, monkeypatch):
    """Each request pushes to the addressee's tabs: a stranger cannot do it at any rate."""
    monkeypatch.setattr(get_settings(), "friend_requests_per_hour", 3)
    _ada, bob, eve = register(session, "ada", "bob", "eve")
    for _ in range(3):
        sent = friend_requests.send_request(session, actor_id=eve, username="ada")
        friend_requests.cancel_request(session, actor_id=eve, request_id=sent.request_id)
        frozen_clock.advance(minutes=1)

    too_many = refused(friend_requests.send_request, session, actor_id=eve, username="ada")

    assert too_many.retry_after == 57 * 60  # the window opened with the first request
    assert too_many.message.startswith("You have sent many friend requests recently.")
    assert rows(session, Friendship) == 0
    # Other senders are not affected.
    friend_requests.send_request(session, actor_id=bob, username="ada")
    # Attempts that fail count too (a missing user, a duplicate), and the window ends.
    frozen_clock.advance(minutes=57)
    friend_requests.send_request(session, actor_id=eve, username="ada")
    assert rows(session, Friendship) == 2


def test_failed_friend_requests_count_towards_the_limit(session, frozen_clock, monkeypatch):
    monkeypatch.setattr(get_settings(), "friend_requests_per_hour", 2)
    (eve,) = register(session, "eve")
    for _ in range(2):
        with pytest.raises(Exception, match="No user"):
            friend_requests.send_request(session, actor_id=eve, username="nobody")

    refused(friend_requests.send_request, session, actor_id=eve, username="nobody")


# --- registrations ------------------------------------------------------------------------


def test_registrations_are_limited_per_address(session, frozen_clock, monkeypatch):
    monkeypatch.setattr(get_settings(), "registrations_per_hour", 2)
    users.check_register(session, username="ada", password=PASSWORD, ip=IP)
    with pytest.raises(Exception, match="taken"):
        users.check_register(session, username="ADA", password=PASSWORD, ip=IP)

    too_many = refused(users.check_register, session, username="bob", password=PASSWORD, ip=IP)

    assert too_many.retry_after == 3600
    assert session.exec(select(col(User.username))).all() == ["ada"]
    # Another address may register; this one again after the hour.
    users.check_register(session, username="bob", password=PASSWORD, ip=OTHER_IP)
    frozen_clock.advance(hours=1)
    users.check_register(session, username="cyd", password=PASSWORD, ip=IP)
    assert rows(session, User) == 3


def test_registrations_without_an_address_share_one_bucket(session, frozen_clock, monkeypatch):
    monkeypatch.setattr(get_settings(), "registrations_per_hour", 1)
    users.check_register(session, username="ada", password=PASSWORD, ip="")

    refused(users.check_register, session, username="bob", password=PASSWORD, ip="")


# --- search -------------------------------------------------------------------------------


def test_prefix_search_is_limited_per_user(session, frozen_clock, monkeypatch):
    monkeypatch.setattr(get_settings(), "searches_per_minute", 3)
    ada, bob = register(session, "ada", "bob")
    register(session, "bobby")
    for query in ("b", "bo", "bob"):
        assert friends.search_users(session, actor_id=ada, query=query)
    frozen_clock.advance(seconds=20)

    too_many = refused(friends.search_users, session, actor_id=ada, query="bobb")

    assert too_many.retry_after == 40
    assert too_many.message.startswith("You are searching very fast.")
    # An empty query costs nothing and is not counted; other users search on.
    assert friends.search_users(session, actor_id=ada, query="  ") == []
    assert [u.username for u in friends.search_users(session, actor_id=bob, query="a")] == ["ada"]
    frozen_clock.advance(seconds=40)
    assert [u.username for u in friends.search_users(session, actor_id=ada, query="bobb")] == [
        "bobby"
    ]


# --- the counter --------------------------------------------------------------------------

LIMIT = limits.Limit(bucket="test", count=5, window=timedelta(minutes=1), message="Slow down.")


def test_the_counter_keeps_one_row_per_key_and_restarts_after_the_window(session, frozen_clock):
    for _ in range(5):
        limits.hit(session, LIMIT, "k")
    refused(limits.hit, session, LIMIT, "k")
    assert rows(session, RateCounter) == 1

    frozen_clock.advance(minutes=1)
    limits.hit(session, LIMIT, "k")

    session.expire_all()
    [row] = session.exec(select(RateCounter)).all()
    assert (row.hits, row.window_start) == (1, frozen_clock.current)


def test_parallel_hits_never_pass_the_limit(database_url, session, frozen_clock):
    """Workers counting at once: exactly ``count`` get through (one statement, no race)."""
    engine = engine_for(database_url)
    threads, start = 16, threading.Barrier(16)
    outcomes: list[str] = []

    def attempt() -> None:
        with Session(engine) as own:
            start.wait()
            try:
                limits.hit(own, LIMIT, "shared")
                outcomes.append("ok")
            except Throttled:
                outcomes.append("throttled")

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sorted(outcomes) == ["ok"] * 5 + ["throttled"] * 11


def test_prune_forgets_counters_a_day_old(session, frozen_clock):
    limits.hit(session, LIMIT, "old")
    frozen_clock.advance(hours=23)
    limits.hit(session, LIMIT, "new")
    frozen_clock.advance(hours=1, seconds=1)

    assert limits.prune(session) == 1

    session.expire_all()
    assert session.exec(select(RateCounter.key)).all() == ["new"]
