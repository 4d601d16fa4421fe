"""Sending a message: its text, its timer, and the one conversation row it opens.

Every refusal also checks that nothing changed: the conversation and message rows are compared
before and after, read through the same session so an uncommitted write would show too.
Users are registered through ``users.check_register`` with a cheap stand-in for argon2
(hashing is not what these tests are about), and made friends through the friends service.
All times come from the frozen clock, so expiry boundaries are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import Session

from iris_reflex import clock, db
from iris_reflex.errors import Invalid
from iris_reflex.models import Conversation, User, UserSession
from iris_reflex.services import auth, blocks, conversations, friends, sending
from iris_reflex.services.auth import Identity
from iris_reflex.services.message_views import MessageView
from iris_reflex.services.timers import AFTER_READ_UNREAD_LIMIT
from tests.services.builders import befriend, friends_ada_and_bob, send
from tests.services.messaging import conversation_rows, message_rows, page, refused, snapshot

pytestmark = pytest.mark.usefixtures("cheap_hash")


# --- sending --------------------------------------------------------------------------------


def test_a_friend_sends_a_message_that_is_stored_for_both(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)

    sent = sending.check_send_message(session, actor_id=ada, username="BOB", body="hello")

    [conversation] = conversation_rows(session)
    [row] = message_rows(session)
    assert sent.recipient_id == bob
    assert sent.message == MessageView(
        id=row.id,
        conversation_id=conversation.id,
        sender_id=ada,
        recipient_id=bob,
        kind="text",
        body="hello",
        created_at=frozen_clock.current,
        expires_at=None,
        timer_seconds=None,
        timer_mode=None,
        read_at=None,
    )
    assert sent.message.expires_at is None
    assert (row.body, row.read_at, row.deleted_at, row.expires_at) == ("hello", None, None, None)
    assert conversation.created_at == frozen_clock.current
    assert page(session, ada, "bob") == page(session, bob, "ada") == [row.id]


def test_messages_in_both_directions_share_one_conversation_row(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)

    first = send(session, ada, "bob", "hi bob")
    later = frozen_clock.advance(minutes=3)
    reply = send(session, bob, "ada", "hi ada")

    [conversation] = conversation_rows(session)
    assert (conversation.user_low_id, conversation.user_high_id) == (min(ada, bob), max(ada, bob))
    assert first.conversation_id == reply.conversation_id == conversation.id
    assert reply.created_at == later
    assert [(m.sender_id, m.recipient_id) for m in message_rows(session)] == [
        (ada, bob),
        (bob, ada),
    ]


def test_a_conversation_opened_by_both_friends_at_once_is_stored_once(session):
    """Bob's first message is stored between Ada's lookup and her insert: the unique pair
    decides, and Ada's message goes into Bob's conversation."""
    ada, bob = friends_ada_and_bob(session)
    low, high = min(ada, bob), max(ada, bob)

    def bob_opens_elsewhere(*_args: object) -> None:
        with Session(session.get_bind()) as other:
            other.add(Conversation(user_low_id=low, user_high_id=high, created_at=clock.now()))
            other.commit()

    event.listen(session, "before_flush", bob_opens_elsewhere, once=True)

    sent = send(session, ada, "bob", "hello")

    [conversation] = conversation_rows(session)
    [row] = message_rows(session)
    assert sent.conversation_id == row.conversation_id == conversation.id
    assert page(session, bob, "ada") == [row.id]


def test_the_same_conversation_comes_back_when_friends_make_up(session):
    ada, bob = friends_ada_and_bob(session)
    before = send(session, ada, "bob", "before")
    friends.remove_friend(session, actor_id=bob, username="ada")
    befriend(session, bob, ada, "ada")

    after = send(session, bob, "ada", "after")

    assert after.conversation_id == before.conversation_id
    assert len(conversation_rows(session)) == 1
    assert page(session, ada, "bob") == [after.id, before.id]


# --- the body -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["", " ", "   \n\t  ", "\r\n", "\u3000\u00a0"])
def test_an_empty_or_blank_message_is_invalid(session, body):
    ada, _bob = friends_ada_and_bob(session)

    refused(
        session,
        Invalid,
        "A message cannot be empty.",
        lambda: sending.check_send_message(session, actor_id=ada, username="bob", body=body),
    )
    assert conversation_rows(session) == []


@pytest.mark.parametrize("char", ["x", "é", "😀", "中"])
def test_a_message_of_exactly_4000_characters_is_stored_whole(session, char):
    ada, bob = friends_ada_and_bob(session)
    body = char * 4000

    sent = send(session, ada, "bob", body)

    [row] = message_rows(session)
    assert row.body == sent.body == body
    [seen] = conversations.list_messages(session, actor_id=bob, username="ada")
    assert seen.body == body


@pytest.mark.parametrize("char", ["x", "😀"])
def test_a_message_of_4001_characters_is_invalid(session, char):
    ada, _bob = friends_ada_and_bob(session)
    send(session, ada, "bob", "existing")

    refused(
        session,
        Invalid,
        "A message can have at most 4,000 characters.",
        lambda: sending.check_send_message(session, actor_id=ada, username="bob", body=char * 4001),
    )


def test_surrounding_whitespace_does_not_count_towards_the_limit(session):
    ada, _bob = friends_ada_and_bob(session)

    sent = send(session, ada, "bob", "  \n" + "x" * 4000 + " \t\n")

    assert sent.body == "x" * 4000
    assert message_rows(session)[0].body == "x" * 4000


def test_the_text_is_stored_trimmed_with_inner_whitespace_kept(session):
    ada, bob = friends_ada_and_bob(session)

    sent = send(session, ada, "bob", " \n  first line\n\n  second  line \t\n ")

    expected = "first line\n\n  second  line"
    assert sent.body == expected
    assert message_rows(session)[0].body == expected
    assert conversations.get_message(session, actor_id=bob, message_id=sent.id).body == expected


@pytest.mark.parametrize(
    "body",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "&lt;b&gt; &amp; **bold** [link](javascript:alert(1))",
        "'; DROP TABLE messages; --",
        "100% _literal_ \\ backslash",
        "Ünïcödé 👍🏽 עברית",
    ],
)
def test_markup_and_special_characters_are_stored_and_returned_verbatim(session, body):
    ada, bob = friends_ada_and_bob(session)

    sent = send(session, ada, "bob", body)

    assert sent.body == body
    assert message_rows(session)[0].body == body
    assert [m.body for m in conversations.list_messages(session, actor_id=bob, username="ada")] == [
        body
    ]
    assert conversations.get_message(session, actor_id=bob, message_id=sent.id).body == body
    [summary] = conversations.list_conversations(session, actor_id=bob)
    assert summary.last_message is not None and summary.last_message.body == body


def test_a_message_with_a_nul_character_is_invalid_on_every_database(session):
    ada, _bob = friends_ada_and_bob(session)
    before = snapshot(session)

    try:
        with pytest.raises(Invalid):
            sending.check_send_message(
                session, actor_id=ada, username="bob", body="before\x00after"
            )
    finally:
        session.rollback()
    assert snapshot(session) == before


# --- timers ---------------------------------------------------------------------------------


def test_the_conversation_timer_applies_unless_the_message_sets_its_own(session, frozen_clock):
    ada, _bob = friends_ada_and_bob(session)
    send(session, ada, "bob", "opens the conversation")
    [conversation] = conversation_rows(session)
    conversation.timer_seconds = 60
    session.add(conversation)
    session.commit()

    by_default = send(session, ada, "bob", "default timer")
    own_timer = send(session, ada, "bob", "own timer", timer_seconds=10)
    no_timer = send(session, ada, "bob", "no timer", timer_seconds=0)

    now = frozen_clock.current
    assert by_default.expires_at == now + timedelta(seconds=60)
    assert own_timer.expires_at == now + timedelta(seconds=10)
    assert no_timer.expires_at is None


@pytest.mark.parametrize("timer_seconds", [-1, 10**12])
def test_an_impossible_timer_is_invalid(session, frozen_clock, timer_seconds):
    ada, _bob = friends_ada_and_bob(session)
    before = snapshot(session)

    with pytest.raises(Invalid):
        sending.check_send_message(
            session, actor_id=ada, username="bob", body="hi", timer_seconds=timer_seconds
        )

    assert snapshot(session) == before


def test_a_body_with_a_lone_surrogate_is_refused_and_nothing_stored(session):
    ada, _ = friends_ada_and_bob(session)
    with pytest.raises(Invalid, match="must be text"):
        send(session, ada, "bob", "hi \udc00 there")
    assert conversations.list_messages(session, actor_id=ada, username="bob") == []


# --- the hot path: a message on a route known from the previous send -----------------------


@pytest.fixture
def one_statement(database_url: str) -> Iterator[Session]:
    """A session whose every statement is its own transaction, as ``db.in_one_statement``
    gives the hot path."""
    with Session(db._autocommit_engine(database_url), expire_on_commit=False) as statements:
        yield statements


@pytest.fixture(autouse=True)
def no_routes_known() -> Iterator[None]:
    sending._routes.clear()
    yield
    sending._routes.clear()


def _signed_in(session: Session, user_id: int) -> Identity:
    user = session.get(User, user_id)
    assert user is not None
    signed = auth.open_session(session, user)
    return Identity(user_id=user_id, session_id=signed.session_id)


def _count_statements(session: Session) -> list[str]:
    seen: list[str] = []
    event.listen(
        session.get_bind(),
        "before_cursor_execute",
        lambda _c, _cur, statement, *_rest: seen.append(statement.split()[0].upper()),
    )
    return seen


def test_a_known_route_stores_the_message_in_one_statement_as_the_full_path_would(
    session, one_statement, frozen_clock
):
    ada, bob = friends_ada_and_bob(session)
    identity = _signed_in(session, ada)
    assert (
        sending.send_on_known_route(one_statement, identity=identity, username="bob", body="x")
        is None
    )
    first = sending.check_send_message(session, actor_id=ada, username="bob", body="first")
    [conversation] = conversation_rows(session)
    conversation.timer_seconds, conversation.timer_mode = 60, "after_read"
    session.add(conversation)
    session.commit()
    # The timer changed after the route was learnt: the route no longer holds.
    assert (
        sending.send_on_known_route(one_statement, identity=identity, username="bob", body="x")
        is None
    )
    sending.check_send_message(session, actor_id=ada, username="bob", body="learns the timer")
    before = len(message_rows(session))

    statements = _count_statements(one_statement)
    sent = sending.send_on_known_route(
        one_statement, identity=identity, username="Bob", body="  on the route  "
    )

    assert sent is not None and sent.recipient_id == bob
    assert statements == ["INSERT"]  # no BEGIN, no COMMIT, nothing read before
    session.expire_all()
    rows = message_rows(session)
    assert len(rows) == before + 1
    stored = rows[-1]
    assert sent.message == MessageView(
        id=stored.id,
        conversation_id=first.message.conversation_id,
        sender_id=ada,
        recipient_id=bob,
        kind="text",
        body="on the route",
        created_at=frozen_clock.current,
        expires_at=frozen_clock.current + AFTER_READ_UNREAD_LIMIT,
        timer_seconds=60,
        timer_mode="after_read",
        read_at=None,
    )
    assert (stored.body, stored.expires_at, stored.timer_seconds, stored.timer_mode) == (
        "on the route",
        sent.message.expires_at,
        60,
        "after_read",
    )
    assert stored.read_at is None and stored.deleted_at is None


def _route_known(session: Session, ada: int) -> None:
    sending.check_send_message(session, actor_id=ada, username="bob", body="learns the route")


@pytest.mark.parametrize(
    "change",
    ["blocked", "unfriended", "session revoked", "session expired", "username taken over"],
)
def test_a_route_that_no_longer_holds_stores_nothing(session, one_statement, frozen_clock, change):
    ada, bob = friends_ada_and_bob(session)
    identity = _signed_in(session, ada)
    _route_known(session, ada)
    if change == "blocked":
        blocks.block(session, actor_id=bob, username="ada")
    elif change == "unfriended":
        friends.remove_friend(session, actor_id=ada, username="bob")
    elif change == "session revoked":
        auth.logout(session, identity)
    elif change == "session expired":
        frozen_clock.advance(days=400)
    else:  # bob is renamed: "bob" now names nobody who is ada's friend
        renamed = session.get(User, bob)
        assert renamed is not None
        renamed.username, renamed.username_key = "robert", "robert"
        session.add(renamed)
        session.commit()
    before = snapshot(session)

    assert (
        sending.send_on_known_route(one_statement, identity=identity, username="bob", body="x")
        is None
    )

    assert snapshot(session) == before
    assert (ada, "bob") not in sending._routes  # the next send takes the full path


def test_a_route_notes_the_session_active_once_it_is_due(session, one_statement, frozen_clock):
    ada, _bob = friends_ada_and_bob(session)
    identity = _signed_in(session, ada)
    _route_known(session, ada)
    opened = session.get(UserSession, identity.session_id)
    assert opened is not None
    noted = opened.last_active_at

    sending.send_on_known_route(one_statement, identity=identity, username="bob", body="soon")
    session.expire_all()
    assert session.get(UserSession, identity.session_id).last_active_at == noted

    frozen_clock.advance(seconds=auth.ACTIVITY_EVERY.total_seconds() + 1)
    sending.send_on_known_route(one_statement, identity=identity, username="bob", body="later")
    session.expire_all()
    assert session.get(UserSession, identity.session_id).last_active_at == frozen_clock.current
