"""Conversations: only friends, history pages, timed messages, the sidebar, receipts, deletion
(sending itself: ``test_sending.py``).

Every refusal also checks that nothing changed: the conversation and message rows are compared
before and after, read through the same session so an uncommitted write would show too.
Users are registered through ``users.check_register`` with a cheap stand-in for argon2
(hashing is not what these tests are about), and made friends through the friends service.
All times come from the frozen clock, so expiry boundaries are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import Session

from iris_reflex import clock
from iris_reflex.errors import NotFound
from iris_reflex.models import Block, Message, MessageKind, User
from iris_reflex.services import blocks, conversations, friend_requests, friends, passwords, sending
from iris_reflex.services.conversations import ReadReceipt
from iris_reflex.services.users import PublicUser
from tests.services.builders import befriend, friends_ada_and_bob, register, send, unread_total
from tests.services.messaging import conversation_rows, message_rows, page, refused, snapshot

NO_CONVERSATION = "No such conversation."
NO_MESSAGE = "No such message."


@pytest.fixture(autouse=True)
def cheap_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registration still goes through ``users.check_register``; only argon2 is skipped."""
    monkeypatch.setattr(passwords, "hash_password", lambda _password: "not-a-real-hash")


# --- helpers --------------------------------------------------------------------------------


def sidebar(session: Session, actor_id: int) -> list[tuple[str, int | None, int]]:
    """``list_conversations`` as (friend's username, preview message id, unread) rows."""
    return [
        (s.friend.username, s.last_message.id if s.last_message else None, s.unread)
        for s in conversations.list_conversations(session, actor_id=actor_id)
    ]


def set_receipts(session: Session, user_id: int, on: bool) -> None:
    user = session.get(User, user_id)
    assert user is not None
    user.read_receipts = on
    session.add(user)
    session.commit()


# --- only friends talk ----------------------------------------------------------------------


def _strangers(session: Session, ada: int, bob: int) -> None:
    pass


def _pending_from_ada(session: Session, ada: int, bob: int) -> None:
    friend_requests.send_request(session, actor_id=ada, username="bob")


def _pending_from_bob(session: Session, ada: int, bob: int) -> None:
    friend_requests.send_request(session, actor_id=bob, username="ada")


def _talked_then(change: Callable[[Session, int, int], object]):  # type: ignore[no-untyped-def]
    """Friends who exchanged messages (unread on both sides), then ``change``."""

    def setup(session: Session, ada: int, bob: int) -> None:
        befriend(session, ada, bob, "bob")
        send(session, ada, "bob", "to bob")
        send(session, bob, "ada", "to ada")
        change(session, ada, bob)

    return setup


def _block_row_beside_friendship(session: Session, ada: int, bob: int) -> None:
    # As left by a race with blocks.block(): the block must win anyway.
    session.add(Block(blocker_id=bob, blocked_id=ada, created_at=clock.now()))
    session.commit()


RELATIONS = {
    "strangers": _strangers,
    "request pending from ada": _pending_from_ada,
    "request pending from bob": _pending_from_bob,
    "removed by ada": _talked_then(
        lambda s, a, b: friends.remove_friend(s, actor_id=a, username="bob")
    ),
    "removed by bob": _talked_then(
        lambda s, a, b: friends.remove_friend(s, actor_id=b, username="ada")
    ),
    "ada blocked bob": _talked_then(lambda s, a, b: blocks.block(s, actor_id=a, username="bob")),
    "bob blocked ada": _talked_then(lambda s, a, b: blocks.block(s, actor_id=b, username="ada")),
    "block beside a friendship": _talked_then(_block_row_beside_friendship),
}


@pytest.mark.parametrize("relation", list(RELATIONS))
def test_only_friends_can_message_read_or_mark_read(session, frozen_clock, relation):
    ada, bob = register(session, "ada", "bob")
    RELATIONS[relation](session, ada, bob)

    for actor, other in ((ada, "bob"), (bob, "ada")):
        for action in (
            lambda a=actor, o=other: sending.check_send_message(
                session, actor_id=a, username=o, body="hello?"
            ),
            lambda a=actor, o=other: conversations.list_messages(session, actor_id=a, username=o),
            lambda a=actor, o=other: conversations.mark_read(session, actor_id=a, username=o),
        ):
            refused(session, NotFound, NO_CONVERSATION, action)
    # A conversation that existed before is not listed on either side any more.
    assert conversations.list_conversations(session, actor_id=ada) == []
    assert conversations.list_conversations(session, actor_id=bob) == []


def test_messaging_a_missing_user_or_yourself_is_not_found(session):
    ada, _bob = friends_ada_and_bob(session)
    send(session, ada, "bob", "existing")

    for username in ("nobody", "ada", "ADA", ""):
        for action in (
            lambda u=username: sending.check_send_message(
                session, actor_id=ada, username=u, body="hello?"
            ),
            lambda u=username: conversations.list_messages(session, actor_id=ada, username=u),
            lambda u=username: conversations.mark_read(session, actor_id=ada, username=u),
        ):
            refused(session, NotFound, NO_CONVERSATION, action)


# --- history pages --------------------------------------------------------------------------


def test_messages_are_listed_newest_first_for_both_participants(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    ids = []
    for n, (sender, to) in enumerate([(ada, "bob"), (bob, "ada"), (ada, "bob"), (ada, "bob")]):
        frozen_clock.advance(seconds=1)
        ids.append(send(session, sender, to, f"message {n}").id)

    assert page(session, ada, "bob") == list(reversed(ids))
    assert page(session, bob, "ada") == list(reversed(ids))
    bodies = [m.body for m in conversations.list_messages(session, actor_id=ada, username="bob")]
    assert bodies == ["message 3", "message 2", "message 1", "message 0"]


def test_keyset_pages_walk_back_through_history_without_gaps_or_overlap(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    ids = []
    for n in range(7):
        frozen_clock.advance(seconds=1)
        ids.append(send(session, ada if n % 2 else bob, "bob" if n % 2 else "ada", f"m{n}").id)

    first = page(session, bob, "ada", limit=3)
    second = page(session, bob, "ada", limit=3, before_id=first[-1])
    third = page(session, bob, "ada", limit=3, before_id=second[-1])
    beyond = page(session, bob, "ada", limit=3, before_id=third[-1])

    newest_first = list(reversed(ids))
    assert first == newest_first[0:3]
    assert second == newest_first[3:6]
    assert third == newest_first[6:7]
    assert beyond == []
    assert first + second + third == newest_first


def test_a_message_arriving_between_pages_does_not_shift_the_next_page(session, frozen_clock):
    ada, _bob = friends_ada_and_bob(session)
    ids = [send(session, ada, "bob", f"m{n}").id for n in range(5)]

    first = page(session, ada, "bob", limit=2)
    newer = send(session, ada, "bob", "arrived meanwhile").id
    second = page(session, ada, "bob", limit=2, before_id=first[-1])

    assert first == [ids[4], ids[3]]
    assert second == [ids[2], ids[1]]
    assert page(session, ada, "bob", limit=1) == [newer]


def test_page_size_defaults_to_50_and_is_clamped_to_1_through_100(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    first = send(session, ada, "bob", "m0")
    # 100 more rows in the same conversation, written directly: only their count matters here.
    session.add_all(
        Message(
            conversation_id=first.conversation_id,
            sender_id=ada,
            recipient_id=bob,
            body=f"m{n}",
            created_at=clock.now(),
        )
        for n in range(1, 101)
    )
    session.commit()
    all_ids = [m.id for m in reversed(message_rows(session))]
    assert len(all_ids) == 101

    assert page(session, ada, "bob") == all_ids[:50]
    assert page(session, ada, "bob", limit=100) == all_ids[:100]
    assert page(session, ada, "bob", limit=101) == all_ids[:100]
    assert page(session, ada, "bob", limit=10_000) == all_ids[:100]
    assert page(session, ada, "bob", limit=1) == all_ids[:1]
    assert page(session, ada, "bob", limit=0) == all_ids[:1]
    assert page(session, ada, "bob", limit=-7) == all_ids[:1]
    assert page(session, ada, "bob", limit=0, before_id=all_ids[0]) == all_ids[1:2]


def test_an_outsider_cannot_read_a_conversation_they_are_not_in(session):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    befriend(session, ada, bob, "bob")
    befriend(session, ada, cat, "cat")
    secret = send(session, ada, "bob", "between us")

    refused(
        session,
        NotFound,
        NO_CONVERSATION,
        lambda: conversations.list_messages(session, actor_id=cat, username="bob"),
    )
    # Cat's own conversation with Ada is separate: no before_id reaches Ada and Bob's messages.
    assert page(session, cat, "ada") == []
    assert page(session, cat, "ada", before_id=secret.id + 1) == []
    assert conversations.mark_read(session, actor_id=cat, username="ada") is None
    assert message_rows(session)[0].read_at is None


def test_a_conversation_that_does_not_exist_yet_lists_nothing_and_is_not_created(session):
    ada, bob = friends_ada_and_bob(session)
    before = snapshot(session)

    assert conversations.list_messages(session, actor_id=ada, username="bob") == []
    assert conversations.list_messages(session, actor_id=bob, username="ada", before_id=5) == []
    assert conversations.mark_read(session, actor_id=bob, username="ada") is None

    assert snapshot(session) == before == ([], [])


# --- timed messages -------------------------------------------------------------------------


def test_a_timed_message_disappears_everywhere_exactly_at_its_expiry(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    plain = send(session, ada, "bob", "stays")
    sent_at = frozen_clock.advance(seconds=1)
    timed = send(session, ada, "bob", "self-destructs", timer_seconds=30)

    assert timed.expires_at is not None
    assert (timed.timer_seconds, timed.expires_at) == (30, sent_at + timedelta(seconds=30))
    assert message_rows(session)[1].timer_mode == "from_send"

    # One microsecond before expiry: still everywhere.
    frozen_clock.advance(seconds=30, microseconds=-1)
    for actor, other in ((ada, "bob"), (bob, "ada")):
        assert page(session, actor, other) == [timed.id, plain.id]
        assert conversations.get_message(session, actor_id=actor, message_id=timed.id).id == (
            timed.id
        )
    assert sidebar(session, ada) == [("bob", timed.id, 0)]
    assert sidebar(session, bob) == [("ada", timed.id, 2)]
    assert unread_total(session, actor_id=bob) == 2

    # Exactly at expiry: gone from every read, for both.
    assert frozen_clock.advance(microseconds=1) == timed.expires_at
    for actor, other in ((ada, "bob"), (bob, "ada")):
        assert page(session, actor, other) == [plain.id]
        refused(
            session,
            NotFound,
            NO_MESSAGE,
            lambda a=actor: conversations.get_message(session, actor_id=a, message_id=timed.id),
        )
    assert sidebar(session, ada) == [("bob", plain.id, 0)]
    assert sidebar(session, bob) == [("ada", plain.id, 1)]
    assert unread_total(session, actor_id=bob) == 1
    # Reading now marks only the visible message; the expired row waits for the sweep, unread.
    receipt = conversations.mark_read(session, actor_id=bob, username="ada")
    assert receipt is not None and receipt.message_ids == [plain.id]
    expired_row = next(m for m in message_rows(session) if m.id == timed.id)
    assert expired_row.read_at is None


def test_a_timed_message_expires_exactly_at_a_fractional_second(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    frozen_clock.advance(seconds=0.25)
    timed = send(session, ada, "bob", "quick", timer_seconds=5)
    assert timed.expires_at == frozen_clock.current + timedelta(seconds=5)

    frozen_clock.advance(seconds=4, microseconds=999_999)
    assert page(session, bob, "ada") == [timed.id]
    assert unread_total(session, actor_id=bob) == 1

    frozen_clock.advance(microseconds=1)
    assert page(session, bob, "ada") == []
    assert unread_total(session, actor_id=bob) == 0


# --- the sidebar ----------------------------------------------------------------------------


def test_conversations_are_ordered_by_newest_visible_activity(session, frozen_clock):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    befriend(session, ada, bob, "bob")
    befriend(session, ada, cat, "cat")
    to_cat = send(session, ada, "cat", "hi cat")
    frozen_clock.advance(seconds=1)
    to_bob = send(session, ada, "bob", "hi bob")
    frozen_clock.advance(seconds=1)
    timed_to_cat = send(session, ada, "cat", "brief", timer_seconds=10)

    summaries = conversations.list_conversations(session, actor_id=ada)
    assert [s.friend for s in summaries] == [
        PublicUser(id=cat, username="cat", display_name="cat"),
        PublicUser(id=bob, username="bob", display_name="bob"),
    ]
    assert [s.last_message.id for s in summaries if s.last_message] == [timed_to_cat.id, to_bob.id]
    assert [s.last_activity for s in summaries] == [
        timed_to_cat.created_at,
        to_bob.created_at,
    ]

    # Once the timed message expires, Cat's newest visible message is older than Bob's.
    frozen_clock.advance(seconds=10)
    assert sidebar(session, ada) == [("bob", to_bob.id, 0), ("cat", to_cat.id, 0)]
    assert conversations.list_conversations(session, actor_id=ada)[1].last_activity == (
        to_cat.created_at
    )

    # A reply moves Cat back to the top, for both sides' sidebars.
    frozen_clock.advance(seconds=1)
    reply = send(session, cat, "ada", "hi ada")
    assert sidebar(session, ada) == [("cat", reply.id, 1), ("bob", to_bob.id, 0)]
    assert sidebar(session, cat) == [("ada", reply.id, 1)]  # "hi cat" is still unread


def test_unread_counts_are_per_conversation_and_exclude_ones_own_messages(session, frozen_clock):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    befriend(session, ada, bob, "bob")
    befriend(session, ada, cat, "cat")
    send(session, ada, "bob", "from ada")
    send(session, bob, "ada", "one")
    send(session, bob, "ada", "two")
    frozen_clock.advance(seconds=1)
    send(session, cat, "ada", "three")

    assert [(name, unread) for name, _, unread in sidebar(session, ada)] == [
        ("cat", 1),
        ("bob", 2),
    ]
    assert unread_total(session, actor_id=ada) == 3
    assert sidebar(session, bob)[0][2] == 1
    assert unread_total(session, actor_id=bob) == 1
    assert unread_total(session, actor_id=cat) == 0


def test_a_conversation_with_no_visible_message_is_listed_without_a_preview(session, frozen_clock):
    ada, _bob = friends_ada_and_bob(session)
    opened_at = frozen_clock.current
    only = send(session, ada, "bob", "oops")
    frozen_clock.advance(minutes=1)
    conversations.delete_for_everyone(session, actor_id=ada, message_id=only.id)

    [summary] = conversations.list_conversations(session, actor_id=ada)
    assert (summary.friend.username, summary.last_message, summary.unread) == ("bob", None, 0)
    assert summary.last_activity == opened_at


@pytest.mark.parametrize("change", ["removed", "blocked"])
def test_only_conversations_with_current_friends_are_listed(session, change):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    befriend(session, ada, bob, "bob")
    befriend(session, cat, ada, "ada")
    send(session, bob, "ada", "from bob")
    from_cat = send(session, cat, "ada", "from cat")

    if change == "removed":
        friends.remove_friend(session, actor_id=ada, username="bob")
    else:
        blocks.block(session, actor_id=bob, username="ada")

    assert sidebar(session, ada) == [("cat", from_cat.id, 1)]
    assert conversations.list_conversations(session, actor_id=bob) == []


def _sidebar_statements(session: Session, actor_id: int) -> tuple[int, int]:
    """(rows, SQL statements) of one ``list_conversations`` call."""
    count = 0

    def counted(*_args: object) -> None:
        nonlocal count
        count += 1

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", counted)
    try:
        rows = conversations.list_conversations(session, actor_id=actor_id)
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return len(rows), count


def test_the_sidebar_costs_the_same_statements_at_3_and_at_30_conversations(session, frozen_clock):
    (ada,) = register(session, "ada")
    counts = {}
    for total in (3, 30):
        while len(conversations.list_conversations(session, actor_id=ada)) < total:
            name = f"friend{len(conversations.list_conversations(session, actor_id=ada))}"
            (friend,) = register(session, name)
            befriend(session, ada, friend, name)
            send(session, friend, "ada", "unread")
            send(session, ada, name, "timed", timer_seconds=5)
            send(session, friend, "ada", "gone", timer_seconds=5)
            frozen_clock.advance(seconds=1)
        frozen_clock.advance(seconds=5)  # the timed messages expire: older ones show
        session.expire_all()
        counts[total] = _sidebar_statements(session, ada)
    assert counts[3][0] == 3 and counts[30][0] == 30
    assert counts[3][1] == counts[30][1]


# --- reading and receipts -------------------------------------------------------------------


def test_mark_read_marks_only_messages_addressed_to_the_reader(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    to_bob = [send(session, ada, "bob", f"to bob {n}").id for n in range(2)]
    to_ada = [send(session, bob, "ada", f"to ada {n}").id for n in range(2)]
    read_at = frozen_clock.advance(minutes=2)

    receipt = conversations.mark_read(session, actor_id=bob, username="ADA")

    assert receipt is not None
    assert sorted(receipt.message_ids) == to_bob
    assert receipt == ReadReceipt(
        conversation_id=conversation_rows(session)[0].id,
        reader_id=bob,
        sender_id=ada,
        message_ids=receipt.message_ids,
        read_at=read_at,
        sender_may_see=True,
    )
    rows = {m.id: m.read_at for m in message_rows(session)}
    assert [rows[i] for i in to_bob] == [read_at, read_at]
    assert [rows[i] for i in to_ada] == [None, None]
    assert unread_total(session, actor_id=bob) == 0
    assert unread_total(session, actor_id=ada) == 2
    assert sidebar(session, bob)[0][2] == 0
    assert sidebar(session, ada)[0][2] == 2


def test_mark_read_stops_at_up_to_id(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    ids = [send(session, ada, "bob", f"m{n}").id for n in range(3)]
    first_read = frozen_clock.advance(seconds=5)

    receipt = conversations.mark_read(session, actor_id=bob, username="ada", up_to_id=ids[1])

    assert receipt is not None and sorted(receipt.message_ids) == ids[:2]
    assert [m.read_at for m in message_rows(session)] == [first_read, first_read, None]
    assert unread_total(session, actor_id=bob) == 1

    second_read = frozen_clock.advance(seconds=5)
    rest = conversations.mark_read(session, actor_id=bob, username="ada")

    assert rest is not None and rest.message_ids == [ids[2]]
    assert rest.read_at == second_read
    # Already-read messages keep the time they were first read.
    assert [m.read_at for m in message_rows(session)] == [first_read, first_read, second_read]


def test_mark_read_returns_none_and_writes_nothing_when_nothing_is_unread(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    first = send(session, ada, "bob", "first")
    send(session, bob, "ada", "own message, never unread for bob")
    assert conversations.mark_read(session, actor_id=bob, username="ada") is not None
    frozen_clock.advance(minutes=1)
    before = snapshot(session)

    assert conversations.mark_read(session, actor_id=bob, username="ada") is None
    assert conversations.mark_read(session, actor_id=bob, username="ada", up_to_id=first.id) is None

    assert snapshot(session) == before
    # Up to an id older than every unread message: nothing to mark either.
    later = send(session, ada, "bob", "later")
    assert conversations.mark_read(session, actor_id=bob, username="ada", up_to_id=first.id) is None
    assert conversations.mark_read(session, actor_id=bob, username="ada", up_to_id=later.id) == (
        ReadReceipt(
            conversation_id=first.conversation_id,
            reader_id=bob,
            sender_id=ada,
            message_ids=[later.id],
            read_at=frozen_clock.current,
            sender_may_see=True,
        )
    )


@pytest.mark.parametrize(
    ("reader_shares", "sender_shares", "shared"),
    [(True, True, True), (False, True, False), (True, False, False), (False, False, False)],
)
def test_read_receipts_reach_the_sender_only_when_both_share_them(
    session, frozen_clock, reader_shares, sender_shares, shared
):
    ada, bob = friends_ada_and_bob(session)  # Ada sends, Bob reads.
    set_receipts(session, bob, reader_shares)
    set_receipts(session, ada, sender_shares)
    message = send(session, ada, "bob", "did you read this?")
    read_at = frozen_clock.advance(minutes=1)

    receipt = conversations.mark_read(session, actor_id=bob, username="ada")

    assert receipt is not None and receipt.sender_may_see is shared
    # The row is always marked: the reader's own view needs it.
    assert message_rows(session)[0].read_at == read_at
    # What the sender is shown.
    for_sender = read_at if shared else None
    [senders] = conversations.list_messages(session, actor_id=ada, username="bob")
    assert senders.read_at == for_sender
    assert conversations.get_message(session, actor_id=ada, message_id=message.id).read_at == (
        for_sender
    )
    [ada_summary] = conversations.list_conversations(session, actor_id=ada)
    assert ada_summary.last_message is not None
    assert ada_summary.last_message.read_at == for_sender
    # The reader always sees their own read time.
    [readers] = conversations.list_messages(session, actor_id=bob, username="ada")
    assert readers.read_at == read_at
    assert conversations.get_message(session, actor_id=bob, message_id=message.id).read_at == (
        read_at
    )
    [bob_summary] = conversations.list_conversations(session, actor_id=bob)
    assert bob_summary.last_message is not None
    assert bob_summary.last_message.read_at == read_at


def test_turning_receipts_back_on_shows_earlier_reads_again(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    set_receipts(session, bob, False)
    send(session, ada, "bob", "hello")
    read_at = frozen_clock.advance(seconds=3)
    conversations.mark_read(session, actor_id=bob, username="ada")
    assert [
        m.read_at for m in conversations.list_messages(session, actor_id=ada, username="bob")
    ] == [None]

    set_receipts(session, bob, True)

    assert [
        m.read_at for m in conversations.list_messages(session, actor_id=ada, username="bob")
    ] == [read_at]


# --- deleting for everyone ------------------------------------------------------------------


def test_the_sender_deletes_a_message_for_everyone(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    first = send(session, ada, "bob", "first")
    frozen_clock.advance(seconds=1)
    reply = send(session, bob, "ada", "reply")
    frozen_clock.advance(seconds=1)
    oops = send(session, ada, "bob", "oops")
    assert sidebar(session, bob) == [("ada", oops.id, 2)]
    frozen_clock.advance(seconds=1)

    view = conversations.delete_for_everyone(session, actor_id=ada, message_id=oops.id)

    assert (view.id, view.body, view.sender_id, view.recipient_id) == (oops.id, "oops", ada, bob)
    assert [m.id for m in message_rows(session)] == [first.id, reply.id]
    session.expire_all()
    assert session.get(Message, oops.id) is None
    for actor, other in ((ada, "bob"), (bob, "ada")):
        assert page(session, actor, other) == [reply.id, first.id]
        refused(
            session,
            NotFound,
            NO_MESSAGE,
            lambda a=actor: conversations.get_message(session, actor_id=a, message_id=oops.id),
        )
    assert sidebar(session, ada) == [("bob", reply.id, 1)]
    assert sidebar(session, bob) == [("ada", reply.id, 1)]
    assert unread_total(session, actor_id=bob) == 1
    # The receipt for Bob's next read cannot include it.
    receipt = conversations.mark_read(session, actor_id=bob, username="ada")
    assert receipt is not None and receipt.message_ids == [first.id]


def test_only_the_sender_can_delete_a_visible_text_message(session, frozen_clock):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    befriend(session, ada, bob, "bob")
    befriend(session, ada, cat, "cat")
    to_bob = send(session, ada, "bob", "to bob")
    already = send(session, ada, "bob", "deleted already")
    conversations.delete_for_everyone(session, actor_id=ada, message_id=already.id)
    half_deleted = send(session, ada, "bob", "marked but not yet removed")
    marked = session.get(Message, half_deleted.id)
    assert marked is not None
    marked.deleted_at = clock.now()
    session.add(marked)
    notice = Message(
        conversation_id=to_bob.conversation_id,
        sender_id=ada,
        recipient_id=bob,
        kind=MessageKind.NOTICE.value,
        body="Ada set the timer to 1 hour",
        created_at=clock.now(),
    )
    session.add(notice)
    session.commit()
    timed = send(session, ada, "bob", "expires", timer_seconds=5)
    frozen_clock.advance(seconds=5)

    for actor, message_id in (
        (bob, to_bob.id),  # the recipient
        (cat, to_bob.id),  # an outsider
        (ada, to_bob.id + 10_000),  # no such id
        (ada, already.id),  # deleted and removed
        (ada, half_deleted.id),  # deleted, row not yet removed
        (ada, notice.id),  # a notice is not a text message
        (ada, timed.id),  # expired (its row waits for the sweep)
    ):
        refused(
            session,
            NotFound,
            NO_MESSAGE,
            lambda a=actor, m=message_id: conversations.delete_for_everyone(
                session, actor_id=a, message_id=m
            ),
        )
    assert page(session, bob, "ada") == [notice.id, to_bob.id]


def test_a_message_marked_deleted_but_not_yet_removed_is_hidden_everywhere(session, frozen_clock):
    """A crash between the two steps of delete_for_everyone leaves such a row."""
    ada, bob = friends_ada_and_bob(session)
    kept = send(session, ada, "bob", "kept")
    gone = send(session, ada, "bob", "gone")
    row = session.get(Message, gone.id)
    assert row is not None
    row.deleted_at = clock.now()
    session.add(row)
    session.commit()

    for actor, other in ((ada, "bob"), (bob, "ada")):
        assert page(session, actor, other) == [kept.id]
        with pytest.raises(NotFound):
            conversations.get_message(session, actor_id=actor, message_id=gone.id)
    assert sidebar(session, bob) == [("ada", kept.id, 1)]
    assert unread_total(session, actor_id=bob) == 1


def test_purging_is_idempotent(session, frozen_clock):
    ada, _bob = friends_ada_and_bob(session)
    kept = send(session, ada, "bob", "kept")
    deleted = send(session, ada, "bob", "deleted")
    expired = send(session, ada, "bob", "expired", timer_seconds=5)
    row = session.get(Message, deleted.id)
    assert row is not None
    row.deleted_at = clock.now()
    session.add(row)
    session.commit()
    frozen_clock.advance(seconds=5)

    assert conversations.purge_messages(session, [deleted.id, expired.id]) == 2
    assert conversations.purge_messages(session, [deleted.id, expired.id]) == 0
    assert conversations.purge_messages(session, []) == 0
    assert conversations.purge_messages(session, [kept.id + 10_000]) == 0

    assert [m.id for m in message_rows(session)] == [kept.id]


# --- single messages and partners -----------------------------------------------------------


def test_get_message_answers_participants_only(session, frozen_clock):
    ada, bob, cat = register(session, "ada", "bob", "cat")
    befriend(session, ada, bob, "bob")
    befriend(session, ada, cat, "cat")
    sent = send(session, ada, "bob", "for bob")

    for actor in (ada, bob):
        assert conversations.get_message(session, actor_id=actor, message_id=sent.id) == sent
    for actor, message_id in ((cat, sent.id), (ada, sent.id + 10_000)):
        refused(
            session,
            NotFound,
            NO_MESSAGE,
            lambda a=actor, m=message_id: conversations.get_message(
                session, actor_id=a, message_id=m
            ),
        )


@pytest.mark.parametrize("change", ["removed", "blocked"])
def test_get_message_is_not_found_once_the_friendship_ends(session, change):
    ada, bob = friends_ada_and_bob(session)
    sent = send(session, ada, "bob", "before the block")
    if change == "removed":
        friends.remove_friend(session, actor_id=ada, username="bob")
    else:
        blocks.block(session, actor_id=ada, username="bob")

    with pytest.raises(NotFound):
        conversations.list_messages(session, actor_id=bob, username="ada")
    with pytest.raises(NotFound):
        conversations.get_message(session, actor_id=bob, message_id=sent.id)
