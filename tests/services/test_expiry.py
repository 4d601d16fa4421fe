"""Disappearing messages: timer modes, conversation timers, the sweep and stored files.

Reads must hide a message exactly at its ``expires_at`` whether or not the sweep has run; the
sweep only reclaims rows and files, files first, in idempotent batches. Users are registered
through ``users.check_register`` with a cheap stand-in for argon2 and made friends through the
friends service; all times come from the frozen clock; files go to a temporary upload folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from iris_reflex import clock
from iris_reflex.errors import DomainError, Invalid, NotFound
from iris_reflex.models import Attachment, Conversation, Message, User
from iris_reflex.services import (
    blocks,
    conversations,
    expiry,
    friend_requests,
    friends,
    passwords,
    sending,
    storage,
)
from iris_reflex.services.expiry import Vanished
from iris_reflex.services.message_views import MessageView
from iris_reflex.services.timers import AFTER_READ_UNREAD_LIMIT
from iris_reflex.settings import get_settings
from tests.services.builders import befriend, friends_ada_and_bob, register, send, unread_total

NO_MESSAGE = "No such message."
NO_CONVERSATION = "No such conversation."
MICRO = timedelta(microseconds=1)


@pytest.fixture(autouse=True)
def cheap_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registration still goes through ``users.check_register``; only argon2 is skipped."""
    monkeypatch.setattr(passwords, "hash_password", lambda _password: "not-a-real-hash")


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh upload folder for this test."""
    folder = tmp_path / "uploads"
    monkeypatch.setattr(get_settings(), "upload_dir", folder)
    return folder


# --- helpers --------------------------------------------------------------------------------


def page(session: Session, actor_id: int, username: str) -> list[int]:
    return [
        m.id for m in conversations.list_messages(session, actor_id=actor_id, username=username)
    ]


def sidebar(session: Session, actor_id: int) -> list[tuple[str, int | None, int]]:
    return [
        (s.friend.username, s.last_message.id if s.last_message else None, s.unread)
        for s in conversations.list_conversations(session, actor_id=actor_id)
    ]


def row(session: Session, message_id: int) -> Message | None:
    session.expire_all()
    return session.get(Message, message_id)


def message_ids(session: Session) -> list[int]:
    session.expire_all()
    return [m for m in session.exec(select(Message.id).order_by(Message.id)).all() if m]


def visible_to(session: Session, actor_id: int, message_id: int) -> bool:
    try:
        conversations.get_message(session, actor_id=actor_id, message_id=message_id)
    except NotFound:
        return False
    return True


def snapshot(session: Session) -> tuple[list[tuple], list[tuple]]:
    """Every conversation (with its timer) and message row as this session sees it now."""
    session.expire_all()
    convs = session.exec(
        select(
            Conversation.id,
            Conversation.timer_seconds,
            Conversation.timer_mode,
            Conversation.timer_set_by_id,
        ).order_by(Conversation.id)
    ).all()
    messages = session.exec(
        select(Message.id, Message.kind, Message.body, Message.expires_at).order_by(Message.id)
    ).all()
    return [tuple(r) for r in convs], [tuple(r) for r in messages]


def refused(
    session: Session, error: type[DomainError], action: Callable[[], object]
) -> DomainError:
    """``action()`` raises ``error`` and changes no row."""
    before = snapshot(session)
    with pytest.raises(error) as caught:
        action()
    assert snapshot(session) == before
    return caught.value


def attach(session: Session, message_id: int | None, uploader_id: int) -> tuple[Path, Path]:
    """An attachment row with a real file and thumbnail; their paths."""
    key, thumb = storage.new_key(), storage.new_key()
    paths = storage.write_bytes(key, b"photo"), storage.write_bytes(thumb, b"thumb")
    session.add(
        Attachment(
            message_id=message_id,
            uploader_id=uploader_id,
            storage_key=key,
            original_name="photo.jpg",
            mime_type="image/jpeg",
            size_bytes=5,
            thumbnail_key=thumb,
            created_at=clock.now(),
        )
    )
    session.commit()
    return paths


def attachment_message_ids(session: Session) -> list[int | None]:
    session.expire_all()
    return sorted(session.exec(select(Attachment.message_id)).all(), key=lambda i: i or 0)


def vanished(message: MessageView) -> Vanished:
    return Vanished(
        message_id=message.id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        recipient_id=message.recipient_id,
    )


def set_mtime(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


# --- from the moment it is sent ---------------------------------------------------------------


def test_a_from_send_message_is_visible_until_its_deadline_and_gone_exactly_at_it(
    session, frozen_clock
):
    ada, bob = friends_ada_and_bob(session)
    plain = send(session, ada, "bob", "stays")
    sent_at = frozen_clock.advance(seconds=1)
    timed = send(session, ada, "bob", "goes", timer_seconds=60, timer_mode="from_send")

    assert (timed.timer_seconds, timed.timer_mode) == (60, "from_send")
    assert timed.expires_at == sent_at + timedelta(seconds=60)

    frozen_clock.current = timed.expires_at - MICRO
    for actor, other in ((ada, "bob"), (bob, "ada")):
        assert page(session, actor, other) == [timed.id, plain.id]
        assert visible_to(session, actor, timed.id)
    assert sidebar(session, bob) == [("ada", timed.id, 2)]
    assert unread_total(session, actor_id=bob) == 2

    frozen_clock.current = timed.expires_at
    for actor, other in ((ada, "bob"), (bob, "ada")):
        assert page(session, actor, other) == [plain.id]
        assert not visible_to(session, actor, timed.id)
    assert sidebar(session, ada) == [("bob", plain.id, 0)]
    assert sidebar(session, bob) == [("ada", plain.id, 1)]
    assert unread_total(session, actor_id=bob) == 1
    # The row is still there: hiding never waited for the sweep.
    assert row(session, timed.id) is not None


def test_reading_a_from_send_message_does_not_move_its_deadline(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    timed = send(session, ada, "bob", "goes", timer_seconds=60)
    frozen_clock.advance(seconds=30)

    conversations.mark_read(session, actor_id=bob, username="ada")

    stored = row(session, timed.id)
    assert stored is not None and stored.read_at == frozen_clock.current
    assert stored.expires_at == timed.expires_at


# --- after it is read -------------------------------------------------------------------------


def test_an_unread_after_read_message_waits_for_its_reader(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    sent_at = frozen_clock.current
    timed = send(session, ada, "bob", "read me", timer_seconds=60, timer_mode="after_read")

    assert (timed.timer_seconds, timed.timer_mode) == (60, "after_read")
    assert timed.expires_at == sent_at + AFTER_READ_UNREAD_LIMIT == sent_at + timedelta(days=30)

    frozen_clock.advance(days=10)  # far beyond the 60 seconds
    for actor, other in ((ada, "bob"), (bob, "ada")):
        assert page(session, actor, other) == [timed.id]
        assert visible_to(session, actor, timed.id)
    assert sidebar(session, bob) == [("ada", timed.id, 1)]
    # The sender reading the conversation does not start the countdown.
    assert conversations.mark_read(session, actor_id=ada, username="bob") is None
    stored = row(session, timed.id)
    assert stored is not None and stored.expires_at == timed.expires_at


def test_reading_an_after_read_message_starts_its_countdown(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    plain = send(session, ada, "bob", "plain")
    from_send = send(session, ada, "bob", "from send", timer_seconds=3600)
    after_read = [
        send(session, ada, "bob", f"after read {s}", timer_seconds=s, timer_mode="after_read")
        for s in (60, 60, 300)
    ]
    read_at = frozen_clock.advance(minutes=20)

    receipt = conversations.mark_read(session, actor_id=bob, username="ada")

    assert receipt is not None
    assert sorted(receipt.message_ids) == [plain.id, from_send.id] + [m.id for m in after_read]
    for message in (plain, from_send):
        stored = row(session, message.id)
        assert stored is not None and stored.expires_at == message.expires_at
    for message, seconds in zip(after_read, (60, 60, 300), strict=True):
        stored = row(session, message.id)
        assert stored is not None
        assert (stored.read_at, stored.expires_at) == (
            read_at,
            read_at + timedelta(seconds=seconds),
        )
        assert conversations.get_message(
            session, actor_id=ada, message_id=message.id
        ).expires_at == read_at + timedelta(seconds=seconds)

    frozen_clock.current = read_at + timedelta(seconds=60) - MICRO
    assert page(session, bob, "ada") == [m.id for m in reversed(after_read)] + [
        from_send.id,
        plain.id,
    ]
    frozen_clock.current = read_at + timedelta(seconds=60)
    assert page(session, bob, "ada") == [after_read[2].id, from_send.id, plain.id]
    assert page(session, ada, "bob") == [after_read[2].id, from_send.id, plain.id]
    frozen_clock.current = read_at + timedelta(seconds=300)
    assert page(session, bob, "ada") == [from_send.id, plain.id]


def test_only_the_messages_being_read_start_their_countdown(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    first, second = (
        send(session, ada, "bob", body, timer_seconds=60, timer_mode="after_read")
        for body in ("first", "second")
    )
    read_at = frozen_clock.advance(minutes=1)

    conversations.mark_read(session, actor_id=bob, username="ada", up_to_id=first.id)

    first_row, second_row = row(session, first.id), row(session, second.id)
    assert first_row is not None and first_row.expires_at == read_at + timedelta(seconds=60)
    assert second_row is not None and second_row.expires_at == second.expires_at
    # Reading again later starts the second one then, and leaves the first one's deadline.
    later = frozen_clock.advance(seconds=30)
    conversations.mark_read(session, actor_id=bob, username="ada")
    first_row, second_row = row(session, first.id), row(session, second.id)
    assert first_row is not None and first_row.expires_at == read_at + timedelta(seconds=60)
    assert second_row is not None and second_row.expires_at == later + timedelta(seconds=60)


def test_a_countdown_started_late_may_end_after_the_unread_bound(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    sent_at = frozen_clock.current
    timed = send(session, ada, "bob", "a week", timer_seconds=7 * 86400, timer_mode="after_read")
    read_at = frozen_clock.advance(days=29)

    conversations.mark_read(session, actor_id=bob, username="ada")

    stored = row(session, timed.id)
    assert stored is not None and stored.expires_at == read_at + timedelta(days=7)
    frozen_clock.current = sent_at + AFTER_READ_UNREAD_LIMIT + timedelta(days=1)
    assert page(session, bob, "ada") == [timed.id]
    frozen_clock.current = read_at + timedelta(days=7)
    assert page(session, bob, "ada") == []


def test_an_after_read_message_never_read_vanishes_30_days_after_sending(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    sent_at = frozen_clock.current
    timed = send(session, ada, "bob", "unread", timer_seconds=3600, timer_mode="after_read")

    frozen_clock.current = sent_at + timedelta(days=30) - MICRO
    assert page(session, bob, "ada") == [timed.id]
    assert unread_total(session, actor_id=bob) == 1

    frozen_clock.current = sent_at + timedelta(days=30)
    for actor, other in ((ada, "bob"), (bob, "ada")):
        assert page(session, actor, other) == []
        assert not visible_to(session, actor, timed.id)
    assert sidebar(session, bob) == [("ada", None, 0)]
    # Too late to read it: nothing is marked and the countdown does not restart.
    assert conversations.mark_read(session, actor_id=bob, username="ada") is None
    stored = row(session, timed.id)
    assert stored is not None and (stored.read_at, stored.expires_at) == (None, timed.expires_at)
    assert [v.message_id for v in expiry.sweep(session, now=clock.now())] == [timed.id]


# --- the conversation's timer ---------------------------------------------------------------


def test_the_conversation_timer_applies_unless_a_message_overrides_it(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    sending.set_conversation_timer(
        session, actor_id=bob, username="ada", seconds=3600, mode="after_read"
    )
    now = frozen_clock.current
    bound = now + AFTER_READ_UNREAD_LIMIT

    cases = {
        "default": ({}, 3600, "after_read", bound),
        "own period, conversation's mode": ({"timer_seconds": 10}, 10, "after_read", bound),
        "own period and mode": (
            {"timer_seconds": 10, "timer_mode": "from_send"},
            10,
            "from_send",
            now + timedelta(seconds=10),
        ),
        "conversation's period, own mode": (
            {"timer_mode": "from_send"},
            3600,
            "from_send",
            now + timedelta(hours=1),
        ),
        "explicitly none": ({"timer_seconds": 0}, None, None, None),
        "explicitly none, with a mode": (
            {"timer_seconds": 0, "timer_mode": "after_read"},
            None,
            None,
            None,
        ),
    }
    for name, (kwargs, seconds, mode, expires_at) in cases.items():
        sent = send(session, ada, "bob", name, **kwargs)
        assert (sent.timer_seconds, sent.timer_mode, sent.expires_at) == (
            seconds,
            mode,
            expires_at,
        ), name
        stored = row(session, sent.id)
        assert stored is not None
        assert (stored.timer_seconds, stored.timer_mode, stored.expires_at) == (
            seconds,
            mode,
            expires_at,
        ), name


def test_a_conversation_timer_without_a_mode_counts_from_sending(session, frozen_clock):
    ada, _bob = friends_ada_and_bob(session)
    send(session, ada, "bob", "opens the conversation")
    [conversation] = session.exec(select(Conversation)).all()
    conversation.timer_seconds = 60  # as written before modes existed
    session.add(conversation)
    session.commit()

    sent = send(session, ada, "bob", "default")

    assert (sent.timer_mode, sent.expires_at) == (
        "from_send",
        frozen_clock.current + timedelta(seconds=60),
    )


def test_turning_the_conversation_timer_off_stops_new_messages_from_expiring(session, frozen_clock):
    ada, _bob = friends_ada_and_bob(session)
    sending.set_conversation_timer(session, actor_id=ada, username="bob", seconds=60)
    timed = send(session, ada, "bob", "timed")

    sending.set_conversation_timer(session, actor_id=ada, username="bob", seconds=None)
    plain = send(session, ada, "bob", "plain")

    assert timed.expires_at == frozen_clock.current + timedelta(seconds=60)
    assert (plain.timer_seconds, plain.timer_mode, plain.expires_at) == (None, None, None)
    # Messages sent earlier keep their own timer.
    stored = row(session, timed.id)
    assert stored is not None and stored.expires_at == timed.expires_at


@pytest.mark.parametrize("mode", ["sometimes", "", "FROM_SEND", "after read"])
def test_an_unknown_timer_mode_on_a_message_is_invalid(session, frozen_clock, mode):
    ada, _bob = friends_ada_and_bob(session)
    refused(
        session,
        Invalid,
        lambda: sending.check_send_message(
            session, actor_id=ada, username="bob", body="hi", timer_seconds=60, timer_mode=mode
        ),
    )


@pytest.mark.parametrize(
    ("seconds", "mode", "body"),
    [
        (3600, "from_send", "Ada set disappearing messages to 1 hour."),
        (86400, "after_read", "Ada set disappearing messages to 1 day after reading."),
        (90, "from_send", "Ada set disappearing messages to 90 seconds."),
        (None, "from_send", "Ada turned off disappearing messages."),
        (0, "after_read", "Ada turned off disappearing messages."),
    ],
)
def test_setting_the_conversation_timer_writes_a_notice(session, frozen_clock, seconds, mode, body):
    ada, bob = friends_ada_and_bob(session)
    ada_row = session.get(User, ada)
    assert ada_row is not None
    ada_row.display_name = "Ada"
    session.add(ada_row)
    session.commit()
    now = frozen_clock.current

    sent = sending.set_conversation_timer(
        session, actor_id=ada, username="BOB", seconds=seconds, mode=mode
    )

    # The conversation did not exist yet: it is created with the timer.
    [conversation] = session.exec(select(Conversation)).all()
    session.refresh(conversation)
    expected_timer = (seconds, mode) if seconds else (None, None)
    assert (conversation.timer_seconds, conversation.timer_mode) == expected_timer
    assert conversation.timer_set_by_id == ada
    assert sent.recipient_id == bob
    assert sent.message == MessageView(
        id=sent.message.id,
        conversation_id=conversation.id,
        sender_id=ada,
        recipient_id=bob,
        kind="notice",
        body=body,
        created_at=now,
        expires_at=None,
        timer_seconds=None,
        timer_mode=None,
        read_at=None,  # the actor's own view: read receipts are not shown to the sender
    )
    stored = row(session, sent.message.id)
    assert stored is not None and stored.read_at == now
    # Both see it; it is never unread and never expires.
    frozen_clock.advance(days=400)
    assert page(session, ada, "bob") == page(session, bob, "ada") == [sent.message.id]
    assert sidebar(session, bob) == [("ada", sent.message.id, 0)]
    assert unread_total(session, actor_id=bob) == 0
    assert conversations.mark_read(session, actor_id=bob, username="ada") is None


def test_either_friend_may_change_the_conversation_timer(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    first = sending.set_conversation_timer(session, actor_id=ada, username="bob", seconds=60)
    frozen_clock.advance(seconds=1)

    second = sending.set_conversation_timer(
        session, actor_id=bob, username="ada", seconds=604800, mode="after_read"
    )

    conversation = session.exec(select(Conversation)).one()
    session.refresh(conversation)
    assert (conversation.timer_seconds, conversation.timer_mode) == (604800, "after_read")
    assert conversation.timer_set_by_id == bob
    assert second.message.conversation_id == first.message.conversation_id == conversation.id
    assert (second.message.sender_id, second.recipient_id) == (bob, ada)
    assert second.message.body == "bob set disappearing messages to 1 week after reading."
    assert page(session, ada, "bob") == [second.message.id, first.message.id]


def _strangers(session: Session, ada: int, bob: int) -> None:
    pass


def _pending(session: Session, ada: int, bob: int) -> None:
    friend_requests.send_request(session, actor_id=ada, username="bob")


def _removed(session: Session, ada: int, bob: int) -> None:
    befriend(session, ada, bob, "bob")
    send(session, ada, "bob", "before")
    friends.remove_friend(session, actor_id=bob, username="ada")


def _blocked(session: Session, ada: int, bob: int) -> None:
    befriend(session, ada, bob, "bob")
    send(session, ada, "bob", "before")
    blocks.block(session, actor_id=bob, username="ada")


@pytest.mark.parametrize("relation", [_strangers, _pending, _removed, _blocked])
def test_only_a_friend_can_set_the_conversation_timer(session, frozen_clock, relation):
    ada, bob = register(session, "ada", "bob")
    relation(session, ada, bob)

    for username in ("bob", "nobody", "ada"):
        error = refused(
            session,
            NotFound,
            lambda u=username: sending.set_conversation_timer(
                session, actor_id=ada, username=u, seconds=3600
            ),
        )
        assert error.message == NO_CONVERSATION


@pytest.mark.parametrize(
    ("seconds", "mode"),
    [
        (-1, "from_send"),
        (4, "from_send"),
        (365 * 86400 + 1, "from_send"),
        (3600, "sometimes"),
        (3600, ""),
        (None, "never"),
    ],
)
def test_an_impossible_conversation_timer_is_invalid(session, frozen_clock, seconds, mode):
    ada, _bob = friends_ada_and_bob(session)
    sending.set_conversation_timer(session, actor_id=ada, username="bob", seconds=60)

    refused(
        session,
        Invalid,
        lambda: sending.set_conversation_timer(
            session, actor_id=ada, username="bob", seconds=seconds, mode=mode
        ),
    )


# --- the next deadline ----------------------------------------------------------------------


def test_next_deadline_is_the_earliest_expiry_of_any_row_still_present(session, frozen_clock):
    assert expiry.next_deadline(session) is None
    ada, bob = friends_ada_and_bob(session)
    send(session, ada, "bob", "no timer")
    sending.set_conversation_timer(session, actor_id=ada, username="bob", seconds=60)
    send(session, ada, "bob", "no timer either", timer_seconds=0)
    assert expiry.next_deadline(session) is None

    start = frozen_clock.current
    after_read = send(session, ada, "bob", "bound", timer_seconds=5, timer_mode="after_read")
    assert expiry.next_deadline(session) == start + AFTER_READ_UNREAD_LIMIT
    late = send(session, bob, "ada", "late", timer_seconds=7200)
    soon = send(session, bob, "ada", "soon", timer_seconds=600)
    assert expiry.next_deadline(session) == soon.expires_at

    # Reading the after-read message moves it to the front.
    frozen_clock.advance(seconds=10)
    conversations.mark_read(session, actor_id=bob, username="ada")
    assert expiry.next_deadline(session) == frozen_clock.current + timedelta(seconds=5)

    # Past deadlines are still reported until the sweep removes their rows.
    frozen_clock.advance(minutes=11)
    assert expiry.next_deadline(session) == start + timedelta(seconds=15)
    gone = expiry.sweep(session, now=clock.now())
    assert [v.message_id for v in gone] == [after_read.id, soon.id]
    assert expiry.next_deadline(session) == late.expires_at


# --- the sweep ------------------------------------------------------------------------------


def test_delete_expired_removes_due_rows_and_their_files_and_keeps_the_rest(
    session, frozen_clock, uploads
):
    ada, bob = friends_ada_and_bob(session)
    kept_plain = send(session, ada, "bob", "plain")
    kept_timed = send(session, bob, "ada", "later", timer_seconds=3600)
    due = send(session, ada, "bob", "due", timer_seconds=60)
    deleted = send(session, bob, "ada", "deleted")
    due_files = [*attach(session, due.id, ada), *attach(session, due.id, ada)]
    deleted_files = list(attach(session, deleted.id, bob))
    kept_files = [*attach(session, kept_plain.id, ada), *attach(session, kept_timed.id, bob)]
    unsent_files = list(attach(session, None, ada))
    marked = session.get(Message, deleted.id)
    assert marked is not None
    marked.deleted_at = clock.now()  # as left by a crash inside delete_for_everyone
    session.add(marked)
    session.commit()
    assert all(p.exists() for p in due_files + deleted_files + kept_files + unsent_files)

    now = frozen_clock.advance(seconds=60)
    gone = expiry.delete_expired(session, now=now)

    assert gone == [vanished(due), vanished(deleted)]
    assert message_ids(session) == [kept_plain.id, kept_timed.id]
    assert not any(p.exists() for p in due_files + deleted_files)
    assert all(p.exists() for p in kept_files + unsent_files)
    assert attachment_message_ids(session) == [None, kept_plain.id, kept_timed.id]
    assert page(session, bob, "ada") == [kept_timed.id, kept_plain.id]


def test_delete_expired_does_nothing_before_the_deadline_and_is_idempotent(
    session, frozen_clock, uploads
):
    ada, _bob = friends_ada_and_bob(session)
    timed = send(session, ada, "bob", "timed", timer_seconds=60)
    files = attach(session, timed.id, ada)

    assert expiry.delete_expired(session, now=timed.expires_at - MICRO) == []
    assert message_ids(session) == [timed.id]
    assert all(p.exists() for p in files)

    assert expiry.delete_expired(session, now=timed.expires_at) == [vanished(timed)]
    assert expiry.delete_expired(session, now=timed.expires_at) == []
    assert expiry.sweep(session, now=timed.expires_at + timedelta(days=1)) == []
    assert message_ids(session) == []
    assert not any(p.exists() for p in files)


def test_delete_expired_works_in_batches_of_the_oldest_ids(session, frozen_clock, uploads):
    ada, _bob = friends_ada_and_bob(session)
    due = [send(session, ada, "bob", f"due {n}", timer_seconds=5) for n in range(5)]
    later = send(session, ada, "bob", "later", timer_seconds=600)
    now = frozen_clock.advance(seconds=5)

    batches = [expiry.delete_expired(session, now=now, batch=2) for _ in range(4)]

    assert [[v.message_id for v in b] for b in batches] == [
        [due[0].id, due[1].id],
        [due[2].id, due[3].id],
        [due[4].id],
        [],
    ]
    assert message_ids(session) == [later.id]


def test_sweep_repeats_batches_until_one_comes_back_short(session, frozen_clock, monkeypatch):
    ada, _bob = friends_ada_and_bob(session)
    due = [send(session, ada, "bob", f"due {n}", timer_seconds=5) for n in range(4)]
    now = frozen_clock.advance(seconds=5)
    sizes: list[int] = []
    real = expiry.delete_expired

    def counting(session: Session, *, now: datetime, batch: int = 500) -> list[Vanished]:
        done = real(session, now=now, batch=batch)
        sizes.append(len(done))
        return done

    monkeypatch.setattr(expiry, "delete_expired", counting)

    assert expiry.sweep(session, now=now, batch=2) == [vanished(m) for m in due]
    assert sizes == [2, 2, 0]


def test_a_crash_after_the_files_leaves_hidden_rows_that_the_next_sweep_removes(
    session, frozen_clock, uploads
):
    ada, bob = friends_ada_and_bob(session)
    kept = send(session, ada, "bob", "kept")
    due = [send(session, ada, "bob", f"due {n}", timer_seconds=60) for n in range(2)]
    files = [p for m in due for p in attach(session, m.id, ada)]
    now = frozen_clock.advance(seconds=60)

    def crash() -> None:
        raise RuntimeError("the database went away")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(session, "commit", crash)
        with pytest.raises(RuntimeError):
            expiry.delete_expired(session, now=now)

    # Files first: they are gone; the rows (and attachment rows) were rolled back.
    assert not any(p.exists() for p in files)
    assert message_ids(session) == [kept.id] + [m.id for m in due]
    assert attachment_message_ids(session) == [m.id for m in due]
    # Still invisible to every read: they are expired, whatever the sweep managed.
    for actor, other in ((ada, "bob"), (bob, "ada")):
        assert page(session, actor, other) == [kept.id]
        assert not any(visible_to(session, actor, m.id) for m in due)
    assert sidebar(session, bob) == [("ada", kept.id, 1)]

    # The next sweep finishes the job (the missing files are no obstacle).
    assert expiry.sweep(session, now=now) == [vanished(m) for m in due]
    assert message_ids(session) == [kept.id]
    assert attachment_message_ids(session) == []


def test_a_failure_while_deleting_files_removes_no_row(session, frozen_clock, uploads):
    ada, _bob = friends_ada_and_bob(session)
    due = send(session, ada, "bob", "due", timer_seconds=60)
    files = attach(session, due.id, ada)
    now = frozen_clock.advance(seconds=60)

    def disk_error(_keys: object) -> int:
        raise OSError("read-only file system")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage, "delete_keys", disk_error)
        with pytest.raises(OSError):
            expiry.sweep(session, now=now)

    assert message_ids(session) == [due.id]
    assert attachment_message_ids(session) == [due.id]
    assert all(p.exists() for p in files)
    assert expiry.sweep(session, now=now) == [vanished(due)]
    assert not any(p.exists() for p in files)


def test_one_sweep_catches_up_after_downtime(session, frozen_clock, uploads):
    ada, bob = friends_ada_and_bob(session)
    plain = send(session, ada, "bob", "plain")
    notice = sending.set_conversation_timer(
        session, actor_id=ada, username="bob", seconds=3600
    ).message
    by_default = [send(session, ada, "bob", f"default {n}") for n in range(3)]
    own = [send(session, bob, "ada", f"own {n}", timer_seconds=5 * (n + 1)) for n in range(3)]
    unread_after_read = send(session, bob, "ada", "never read", timer_mode="after_read")
    read_after_read = send(session, ada, "bob", "read", timer_mode="after_read")
    frozen_clock.advance(minutes=1)
    conversations.mark_read(session, actor_id=bob, username="ada")
    files = [p for m in (*by_default, *own) for p in attach(session, m.id, m.sender_id)]
    forever = send(session, ada, "bob", "no timer", timer_seconds=0)

    # Down for a year: every deadline passed meanwhile.
    now = frozen_clock.advance(days=365)
    gone = expiry.sweep(session, now=now, batch=3)

    assert sorted(v.message_id for v in gone) == sorted(
        m.id for m in (*by_default, *own, unread_after_read, read_after_read)
    )
    assert [v.message_id for v in gone] == sorted(v.message_id for v in gone)
    # The notice ("ada set disappearing messages to 1 hour.") never expires.
    assert message_ids(session) == [plain.id, notice.id, forever.id]
    assert not any(p.exists() for p in files)
    assert expiry.next_deadline(session) is None
    assert expiry.sweep(session, now=now) == []


def test_deleting_for_everyone_also_removes_the_attachment_files(session, frozen_clock, uploads):
    ada, _bob = friends_ada_and_bob(session)
    oops = send(session, ada, "bob", "oops")
    files = attach(session, oops.id, ada)

    conversations.delete_for_everyone(session, actor_id=ada, message_id=oops.id)

    assert message_ids(session) == []
    assert attachment_message_ids(session) == []
    assert not any(p.exists() for p in files)


# --- orphan files ---------------------------------------------------------------------------


def test_delete_orphan_files_removes_only_old_unreferenced_files(session, frozen_clock, uploads):
    ada, _bob = friends_ada_and_bob(session)
    message = send(session, ada, "bob", "with a photo")
    file, thumbnail = attach(session, message.id, ada)
    unsent_file, unsent_thumbnail = attach(session, None, ada)
    avatar_key = storage.new_key()
    avatar = storage.write_bytes(avatar_key, b"avatar")
    user = session.get(User, ada)
    assert user is not None
    user.avatar_key = avatar_key
    session.add(user)
    session.commit()
    old_orphan = storage.write_bytes(storage.new_key(), b"crashed upload")
    young_orphan = storage.write_bytes(storage.new_key(), b"upload in progress")
    stranger = uploads / "README.txt"  # not at a key's place: not Iris's to delete
    stranger.write_text("hands off")

    now = frozen_clock.current
    for path in (file, thumbnail, unsent_file, unsent_thumbnail, avatar, old_orphan, stranger):
        set_mtime(path, now - timedelta(days=2))
    set_mtime(young_orphan, now - timedelta(minutes=10))

    assert expiry.delete_orphan_files(session, older_than=now - timedelta(hours=1)) == 1

    assert not old_orphan.exists()
    for path in (file, thumbnail, unsent_file, unsent_thumbnail, avatar, young_orphan, stranger):
        assert path.exists(), path
    assert expiry.delete_orphan_files(session, older_than=now - timedelta(hours=1)) == 0
    # Once old enough, the interrupted upload goes too.
    assert expiry.delete_orphan_files(session, older_than=now) == 1
    assert not young_orphan.exists()


def test_delete_orphan_files_with_no_upload_folder_deletes_nothing(session, uploads):
    assert not uploads.exists()
    assert expiry.delete_orphan_files(session, older_than=clock.now()) == 0


def test_without_shared_receipts_an_after_read_deadline_does_not_reveal_the_read_time(
    session, frozen_clock
):
    ada, bob = friends_ada_and_bob(session)
    reader = session.get(User, bob)
    assert reader is not None
    reader.read_receipts = False
    session.add(reader)
    session.commit()
    sent = send(session, ada, "bob", "secret", timer_seconds=60, timer_mode="after_read")
    read_at = frozen_clock.advance(minutes=7)
    conversations.mark_read(session, actor_id=bob, username="ada")

    seen_by_sender = conversations.get_message(session, actor_id=ada, message_id=sent.id)
    assert seen_by_sender.read_at is None
    assert seen_by_sender.expires_at == sent.created_at + AFTER_READ_UNREAD_LIMIT
    seen_by_reader = conversations.get_message(session, actor_id=bob, message_id=sent.id)
    assert seen_by_reader.expires_at == read_at + timedelta(seconds=60)
    # It still vanishes for both at the real deadline.
    frozen_clock.current = read_at + timedelta(seconds=60)
    assert page(session, ada, "bob") == []
    assert page(session, bob, "ada") == []


def test_a_new_conversation_starts_with_its_creators_default_timer(session, frozen_clock):
    ada, bob = friends_ada_and_bob(session)
    (cy,) = register(session, "cyd")
    befriend(session, bob, cy, "cyd")
    for user_id, seconds in ((ada, 3600), (cy, 60)):
        user = session.get(User, user_id)
        assert user is not None
        user.default_timer_seconds = seconds
        session.add(user)
    session.commit()

    first = send(session, ada, "bob", "first")
    assert (first.timer_seconds, first.timer_mode) == (3600, "from_send")
    assert first.expires_at == frozen_clock() + timedelta(hours=1)
    # Bob's replies in that conversation follow it too; an explicit 0 still means none.
    assert send(session, bob, "ada", "reply").timer_seconds == 3600
    assert send(session, ada, "bob", "keep", timer_seconds=0).expires_at is None
    # Bob has no default: a conversation he opens with cyd has none, though cyd has one.
    assert send(session, bob, "cyd", "hello cyd").expires_at is None
    assert send(session, cy, "bob", "hi bob").expires_at is None
