"""The home page's states (sidebar, friends, conversation, messages, composer) through their
event handlers, driven directly (no browser), on SQLite and PostgreSQL.

Each ``_tab`` is one browser tab (``tests.state.conftest.Tab``): its own state tree with its
own client token. Async handlers run under ``asyncio.run``; the events their actions publish
find no running app (``live.outbox`` is not bound), so nothing is pushed: no test relies on
it. What a push would run on another tab is run directly on that tab instead
(``tab.push("conversations")``, ``state.tabs.apply_change``). Rows are read back through the
test's own session after a ``rollback``, so every count is what the database holds now.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Coroutine, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlmodel import Session, func, select

from iris_reflex.actions import messages as message_actions
from iris_reflex.db import engine_for
from iris_reflex.live import fanout, outbox, push
from iris_reflex.live.events import Change, TabChange
from iris_reflex.live.registry import get_registry
from iris_reflex.models import Friendship, Message, User
from iris_reflex.paths import SESSION_COOKIE
from iris_reflex.services import (
    auth,
    blocks,
    conversations,
    friend_requests,
    friends,
    sending,
    users,
)
from iris_reflex.settings import get_settings
from iris_reflex.state.composer import CLEAR_SENT_FILES
from iris_reflex.state.conversation import ARRIVED_MAX, KEPT_MAX
from iris_reflex.state.session import SessionState
from iris_reflex.state.tabs import ReflexTabs
from tests.state.conftest import Tab, action_args, action_name

PASSWORD = "correct horse battery"

# A coroutine created by a handler and never awaited would only warn; here it fails the run.
pytestmark = [
    pytest.mark.filterwarnings("error::RuntimeWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]


@dataclasses.dataclass(frozen=True)
class Person:
    """A registered user with a signed-in browser (its session cookie)."""

    id: int
    username: str
    cookie: str


def _person(session: Session, username: str) -> Person:
    user = users.check_register(session, username=username, password=PASSWORD, ip="192.0.2.1")
    signed = auth.login(session, username=username, password=PASSWORD, ip="198.51.100.1")
    assert user.id is not None
    return Person(user.id, user.username, f"{SESSION_COOKIE}={signed.token}; theme=dark")


def _befriend(session: Session, a: Person, b: Person) -> None:
    sent = friend_requests.send_request(session, actor_id=a.id, username=b.username)
    friend_requests.accept_request(session, actor_id=b.id, request_id=sent.request_id)


def _tab(cookie: str = "") -> Any:
    """A new tab (its own state tree and client token) sending this cookie header."""
    return Tab(cookie)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _loaded_tab(person: Person) -> Any:
    """A tab of ``person`` after the home page's on_load (require_user, then load)."""
    chat = _tab(person.cookie)

    async def on_load() -> None:
        assert await chat.session.require_user() is None
        await chat.load()

    run(on_load())
    return chat


def _toast(spec: Any) -> tuple[str, str]:
    """(kind, text) of a returned toast, e.g. ("error", "No such conversation.")."""
    assert spec is not None, "expected a toast, got None"
    if isinstance(spec, list):  # a refused send also gives the files back to the tray
        spec = spec[0]
    assert action_name(spec) == "_call_function"
    js = spec.args[0][1]._js_expr
    found = re.search(r"""\['__toast'\]\?\.\["(\w+)"\]\(("(?:[^"\\]|\\.)*")\)""", js)
    assert found, js
    return found.group(1), json.loads(found.group(2))


def _error_text(spec: Any) -> str:
    kind, text = _toast(spec)
    assert kind == "error", (kind, text)
    return text


def _redirects_to_login(spec: Any) -> bool:
    return (
        spec is not None
        and action_name(spec) == "_redirect"
        and action_args(spec)["path"] == "/login"
    )


def _message_count(session: Session) -> int:
    session.rollback()  # end any snapshot: count what is committed now
    return session.exec(select(func.count()).select_from(Message)).one()


def _bodies(chat: Any) -> list[str]:
    return [m.body for m in chat.messages]


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    """Client tokens registered by one test (user ids repeat) never reach another, and no
    test leaves a tab driver installed."""
    get_registry.cache_clear()
    yield
    get_registry.cache_clear()
    push.install(None)


# ------------------------------------------------------------------ the tab and its session


def test_every_state_of_a_tab_finds_that_tabs_session(app_db, session):
    ada = _person(session, "Ada")
    chat = _tab(ada.cookie)
    other = _tab(ada.cookie)

    async def sessions(tab: Any) -> list[Any]:
        parts = (tab.composer, tab.messages_state, tab.conversation, tab.friends, tab.sidebar)
        return [await part.get_state(SessionState) for part in parts]

    mine, theirs = run(sessions(chat)), run(sessions(other))
    assert all(isinstance(s, SessionState) and s is chat.session for s in mine)
    assert all(s is other.session for s in theirs)
    assert chat.session is not other.session
    assert mine[0]._verified_identity().user_id == ada.id


@pytest.mark.parametrize("cookie_kind", ["missing", "tampered"])
def test_tab_without_valid_cookie_is_sent_to_login_and_changes_nothing(
    app_db, session, cookie_kind
):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    cookie = {
        "missing": "",
        "tampered": bob.cookie.replace(f"{SESSION_COOKIE}=", f"{SESSION_COOKIE}=x", 1),
    }[cookie_kind]
    chat = _tab(cookie)

    assert _redirects_to_login(run(chat.load()))
    assert _redirects_to_login(run(chat.open_conversation("ada")))
    assert chat.active_username == ""
    # A tab still showing a conversation from before its cookie went bad.
    chat.active_username = "Ada"
    assert _redirects_to_login(run(chat.send_message({"body": "hi"})))
    assert _redirects_to_login(run(chat.search("ad")))
    assert _redirects_to_login(run(chat.send_request("ada")))

    assert _message_count(session) == 0
    assert chat.conversations == [] and chat.friend_list == [] and chat.messages == []
    assert chat.search_results == []
    assert run(get_registry().users()) == set()


def test_anonymous_tab_with_nothing_open_writes_nothing(app_db, session):
    _person(session, "Ada")
    chat = _tab()
    result = run(chat.send_message({"body": "hi"}))
    # Checked before the cookie: a toast, not a redirect (see the report); nothing written.
    assert _error_text(result) == "Open a conversation first."
    assert _message_count(session) == 0


def test_session_revoked_after_opening_conversation_cannot_send(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))
    assert chat.active_username == "Bob"

    auth.revoke_sessions(session, user_id=ada.id)  # "sign out everywhere"

    assert _redirects_to_login(run(chat.send_message({"body": "still here?"})))
    assert _message_count(session) == 0


@pytest.mark.parametrize(
    "event",
    [
        lambda tab: tab.set_chat_filter("b"),
        lambda tab: tab.set_sidebar_tab("friends"),
        lambda tab: tab.set_timer_choice("300"),
        lambda tab: tab.set_custom_timer("2h"),
        lambda tab: tab.set_timer_after_read(True),
        lambda tab: tab.conversation.detect_timezone(),
        lambda tab: tab.set_timezone("Europe/Paris"),
        lambda tab: tab.close_conversation(),
    ],
    ids=[
        "set_chat_filter",
        "set_sidebar_tab",
        "set_timer_choice",
        "set_custom_timer",
        "set_timer_after_read",
        "detect_timezone",
        "set_timezone",
        "close_conversation",
    ],
)
def test_any_event_of_a_revoked_session_empties_the_tab(app_db, session, event):
    """Even events that only change what is shown check the session, and a tab whose
    session ended keeps nothing of it: no messages, no conversations, no live updates."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    _sent_events(session, bob, "Ada", "private words")
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))
    assert _bodies(chat) == ["private words"] and chat.conversations
    token = chat.router.session.client_token

    auth.revoke_sessions(session, user_id=ada.id)  # "sign out everywhere"

    assert _redirects_to_login(run(event(chat)))
    assert _bodies(chat) == []
    assert chat.conversations == [] and chat.chat_rows == []
    assert (chat.active_username, chat.username, chat.signed_in) == ("", "", False)
    assert token not in run(get_registry().tokens(ada.id))


# ------------------------------------------------------------------------------- loading


def test_load_registers_tab_and_fills_sidebar_and_friend_lists(app_db, session):
    ada, bob, cat, dan = (_person(session, n) for n in ("Ada", "Bob", "Cat", "Dan"))
    _befriend(session, ada, bob)
    sending.check_send_message(session, actor_id=bob.id, username="Ada", body="hi Ada")
    incoming = friend_requests.send_request(session, actor_id=cat.id, username="Ada")
    outgoing = friend_requests.send_request(session, actor_id=ada.id, username="Dan")
    chat = _tab(ada.cookie)

    async def load() -> tuple[Any, set[str]]:
        result = await chat.load()
        return result, await get_registry().tokens(ada.id)

    result, tokens = run(load())

    assert action_name(result) == "_call_script"
    assert action_args(result)["javascript_code"].startswith("Intl.DateTimeFormat()")
    assert tokens == {chat.router.session.client_token}
    assert chat.router.session.client_token != ""
    assert [f.username for f in chat.friend_list] == ["Bob"]
    assert [(r.id, r.username) for r in chat.incoming] == [(incoming.request_id, "Cat")]
    assert [(r.id, r.username) for r in chat.outgoing] == [(outgoing.request_id, "Dan")]
    assert chat.blocked == []
    assert [(c.username, c.preview, c.unread) for c in chat.conversations] == [("Bob", "hi Ada", 1)]
    assert chat.total_unread == 1

    # A second tab of the same user registers beside the first.
    second = _loaded_tab(ada)
    assert run(get_registry().tokens(ada.id)) == {
        chat.router.session.client_token,
        second.router.session.client_token,
    }


# ------------------------------------------------------------- who may open and send


def test_outsider_cannot_open_conversation(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    cat = _person(session, "Cat")
    _befriend(session, ada, bob)
    chat = _loaded_tab(cat)

    assert _error_text(run(chat.open_conversation("ada"))) == friends.NO_SUCH_CONVERSATION
    assert chat.active_username == ""
    assert chat.messages == []
    # The same answer for someone who does not exist: nothing reveals who does.
    assert _error_text(run(chat.open_conversation("nobody"))) == friends.NO_SUCH_CONVERSATION


def test_send_without_open_conversation_is_refused(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    chat = _loaded_tab(ada)

    assert _error_text(run(chat.send_message({"body": "hi"}))) == "Open a conversation first."
    assert _message_count(session) == 0


def test_tab_whose_friendship_ended_after_opening_cannot_send(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))
    assert chat.active_username == "Bob"

    friends.remove_friend(session, actor_id=bob.id, username="Ada")

    assert _error_text(run(chat.send_message({"body": "hello?"}))) == (friends.NO_SUCH_CONVERSATION)
    assert _message_count(session) == 0


@pytest.mark.parametrize("ended", ["friendship", "session"])
def test_a_message_on_a_known_route_is_one_statement_and_an_ended_route_refuses_as_before(
    app_db, session, database_url, ended
):
    """From the second message to a friend, sending is one statement that checks the
    session and the friendship itself (``sending.send_on_known_route``); once either ended,
    the tab is refused as on a first message, and nothing is stored."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))
    run(chat.send_message({"body": "first"}))

    with _Statements(database_url) as seen:
        run(chat.send_message({"body": "second"}))

    assert seen.count == 1
    assert _bodies(chat)[-2:] == ["first", "second"]
    assert _message_count(session) == 2
    if ended == "friendship":
        friends.remove_friend(session, actor_id=bob.id, username="Ada")
        refused = run(chat.send_message({"body": "hello?"}))
        assert _error_text(refused) == friends.NO_SUCH_CONVERSATION
    else:
        auth.revoke_sessions(session, user_id=ada.id)
        assert _redirects_to_login(run(chat.send_message({"body": "still here?"})))
    assert _message_count(session) == 2


# --------------------------------------------------------------------- a conversation


def test_sent_message_shows_as_sent_then_read_once_friend_opens_it(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab, bob_tab = _loaded_tab(ada), _loaded_tab(bob)

    opened = run(ada_tab.open_conversation("bob"))  # any letter case
    assert action_name(opened) == "_call_script"
    assert ada_tab.active_username == "Bob"
    assert ada_tab.messages == []

    # Nothing comes back but the delta: the page scrolls to the new row by itself.
    assert run(ada_tab.send_message({"body": "  hello  "})) is None
    assert [(m.body, m.mine, m.status) for m in ada_tab.messages] == [("hello", True, "sent")]
    assert ada_tab.messages[0].show_day is True
    assert [(c.username, c.preview) for c in ada_tab.conversations] == [("Bob", "You: hello")]

    # Bob's tab, told by a push, counts it as unread until he opens it.
    bob_tab.push("conversations")
    assert [(c.username, c.unread) for c in bob_tab.conversations] == [("Ada", 1)]
    assert bob_tab.total_unread == 1

    run(bob_tab.open_conversation("Ada"))
    assert [(m.body, m.mine, m.status) for m in bob_tab.messages] == [("hello", False, "")]
    assert bob_tab.total_unread == 0

    ada_tab.push("receipts", message_ids=(ada_tab.messages[0].id,))  # the receipt's push
    assert [(m.body, m.status) for m in ada_tab.messages] == [("hello", "read")]


def test_a_receipt_turns_only_the_read_messages_ticks(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab = _loaded_tab(ada)
    run(ada_tab.open_conversation("Bob"))
    for body in ("one", "two"):
        run(ada_tab.send_message({"body": body}))
    first = ada_tab.messages[0].id

    ada_tab.push("receipts", message_ids=(first, 10**6))  # an id it does not show is ignored

    assert [(m.body, m.status) for m in ada_tab.messages] == [("one", "read"), ("two", "sent")]


def test_a_receipt_for_an_after_read_timer_shows_its_countdown(app_db, session):
    """The deadline of an after-read timer starts with the read: the sender's tab re-reads
    it rather than guessing."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab, bob_tab = _loaded_tab(ada), _loaded_tab(bob)
    run(ada_tab.open_conversation("Bob"))
    run(ada_tab.set_timer_choice("300"))
    run(ada_tab.set_timer_after_read(True))
    run(ada_tab.send_message({"body": "read me"}))
    [sent] = ada_tab.messages
    assert sent.waiting_for_read is True  # (an unread one still has its far, unread limit)

    run(bob_tab.open_conversation("Ada"))  # Bob reads it: the countdown starts
    ada_tab.push("receipts", message_ids=(sent.id,))

    [shown] = ada_tab.messages
    assert (shown.status, shown.waiting_for_read) == ("read", False)
    assert 0 < shown.expires_ms < sent.expires_ms  # five minutes from the read, not the limit


def test_message_arriving_in_open_conversation_is_read_at_once(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab, bob_tab = _loaded_tab(ada), _loaded_tab(bob)
    run(ada_tab.open_conversation("Bob"))
    run(bob_tab.open_conversation("Ada"))
    bob_tab.push("typing", "Ada")
    assert bob_tab.friend_typing is True

    run(ada_tab.send_message({"body": "are you there?"}))

    bob_tab.push("message_arrived")
    assert _bodies(bob_tab) == ["are you there?"]
    assert bob_tab.friend_typing is False
    assert bob_tab.total_unread == 0
    ada_tab.push("conversations")
    assert [m.status for m in ada_tab.messages] == ["read"]


def test_markup_in_body_is_kept_verbatim(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab, bob_tab = _loaded_tab(ada), _loaded_tab(bob)
    body = '<b>bold</b> & <script>alert("x")</script> {{state}} `code` <img src=x onerror=1>'

    run(ada_tab.open_conversation("Bob"))
    run(ada_tab.send_message({"body": body}))
    run(bob_tab.open_conversation("Ada"))

    assert _bodies(ada_tab) == [body]
    assert _bodies(bob_tab) == [body]
    assert bob_tab.conversations[0].preview == body[:80]
    session.rollback()
    assert session.exec(select(Message.body)).one() == body


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", "A message cannot be empty."),
        ("   \n\t  ", "A message cannot be empty."),
        ("x" * (sending.MAX_BODY + 1), "A message can have at most 4,000 characters."),
        ("a\x00b", "A message cannot contain NUL characters."),
    ],
    ids=["empty", "whitespace", "4001-chars", "nul"],
)
def test_invalid_body_is_refused_and_nothing_written(app_db, session, body, error):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))

    assert _error_text(run(chat.send_message({"body": body}))) == error
    assert _message_count(session) == 0
    assert chat.messages == []


def test_body_of_exactly_the_limit_is_sent(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))

    run(chat.send_message({"body": "y" * sending.MAX_BODY}))
    assert _bodies(chat) == ["y" * sending.MAX_BODY]
    assert _message_count(session) == 1


def test_recipient_cannot_delete_friends_message(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab, bob_tab = _loaded_tab(ada), _loaded_tab(bob)
    run(ada_tab.open_conversation("Bob"))
    run(ada_tab.send_message({"body": "mine to delete"}))
    run(bob_tab.open_conversation("Ada"))
    message_id = bob_tab.messages[0].id

    result = run(bob_tab.delete_message(message_id))

    assert _error_text(result) == "That message cannot be deleted."
    assert _message_count(session) == 1
    assert _bodies(bob_tab) == ["mine to delete"]
    # Garbage from the browser is refused the same way.
    assert _error_text(run(bob_tab.delete_message("not a number"))) == (
        "That message cannot be deleted."
    )


def test_sender_deletes_message_for_both_tabs(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab, bob_tab = _loaded_tab(ada), _loaded_tab(bob)
    run(ada_tab.open_conversation("Bob"))
    run(ada_tab.send_message({"body": "keep"}))
    run(ada_tab.send_message({"body": "oops"}))
    run(bob_tab.open_conversation("Ada"))
    assert _bodies(bob_tab) == ["keep", "oops"]
    oops = ada_tab.messages[-1].id

    assert run(ada_tab.delete_message(oops)) is None

    assert _bodies(ada_tab) == ["keep"]
    assert [c.preview for c in ada_tab.conversations] == ["You: keep"]
    bob_tab.push("conversations")  # what the deletion's push runs
    assert _bodies(bob_tab) == ["keep"]
    assert [c.preview for c in bob_tab.conversations] == ["keep"]
    assert _message_count(session) == 1
    # Deleting it again: it is gone.
    assert _error_text(run(ada_tab.delete_message(oops))) == "That message cannot be deleted."


# ------------------------------------------------------------------------------ history


def _send_many(session: Session, sender: Person, recipient: Person, count: int) -> list[str]:
    bodies = [f"message {i}" for i in range(count)]
    for body in bodies:
        sending.check_send_message(
            session, actor_id=sender.id, username=recipient.username, body=body
        )
    return bodies


def test_load_older_pages_back_to_the_first_message(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    bodies = _send_many(session, bob, ada, 55)
    chat = _loaded_tab(ada)

    run(chat.open_conversation("Bob"))
    assert len(chat.messages) == conversations.PAGE_DEFAULT
    assert _bodies(chat) == bodies[5:]
    assert chat.has_older is True

    assert run(chat.load_older()) is None

    assert _bodies(chat) == bodies
    ids = [m.id for m in chat.messages]
    assert ids == sorted(ids)
    assert len(set(ids)) == 55
    assert chat.has_older is False
    assert [m.show_day for m in chat.messages] == [True] + [False] * 54

    # Nothing older: asking again changes nothing.
    run(chat.load_older())
    assert _bodies(chat) == bodies
    assert chat.has_older is False


def test_exactly_one_page_of_history_has_nothing_older(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    _send_many(session, bob, ada, conversations.PAGE_DEFAULT)
    chat = _loaded_tab(ada)

    run(chat.open_conversation("Bob"))

    assert len(chat.messages) == conversations.PAGE_DEFAULT
    assert chat.has_older is False


def test_reload_after_loading_whole_history_keeps_has_older_false(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    bodies = _send_many(session, bob, ada, 55)
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))
    run(chat.load_older())
    assert chat.has_older is False

    chat.push("conversations")

    assert _bodies(chat) == bodies
    assert chat.has_older is False


# ------------------------------------------------------------------------ friend actions


def test_friend_request_sent_seen_and_accepted_through_state(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    ada_tab, bob_tab = _loaded_tab(ada), _loaded_tab(bob)
    run(ada_tab.search("bo"))
    assert [r.username for r in ada_tab.search_results] == ["Bob"]

    result = run(ada_tab.send_request("bob"))

    assert _toast(result) == ("success", "Friend request sent to bob.")
    assert ada_tab.search_query == "" and ada_tab.search_results == []
    assert [r.username for r in ada_tab.outgoing] == ["Bob"]
    bob_tab.push("friends")  # what the request's push runs
    assert [r.username for r in bob_tab.incoming] == ["Ada"]
    request_id = bob_tab.incoming[0].id

    assert run(bob_tab.accept_request(request_id)) is None

    assert bob_tab.incoming == []
    assert [f.username for f in bob_tab.friend_list] == ["Ada"]
    ada_tab.push("friends")
    assert ada_tab.outgoing == []
    assert [f.username for f in ada_tab.friend_list] == ["Bob"]
    # A request already answered cannot be accepted twice.
    assert _error_text(run(bob_tab.accept_request(request_id))) == friend_requests.NO_SUCH_REQUEST


def test_cancel_of_someone_elses_request_is_refused(app_db, session):
    ada, bob, cat = (_person(session, n) for n in ("Ada", "Bob", "Cat"))
    sent = friend_requests.send_request(session, actor_id=ada.id, username="Bob")
    bob_tab, cat_tab = _loaded_tab(bob), _loaded_tab(cat)

    # Neither the addressee nor a stranger may withdraw Ada's request.
    for tab in (bob_tab, cat_tab):
        assert (
            _error_text(run(tab.cancel_request(sent.request_id))) == friend_requests.NO_SUCH_REQUEST
        )
    session.rollback()
    row = session.get(Friendship, sent.request_id)
    assert row is not None and row.status == friend_requests.PENDING
    assert [r.username for r in bob_tab.incoming] == ["Ada"]


def test_block_closes_open_conversation_with_that_user(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab, bob_tab = _loaded_tab(ada), _loaded_tab(bob)
    run(ada_tab.open_conversation("Bob"))
    run(ada_tab.send_message({"body": "bye"}))
    run(bob_tab.open_conversation("Ada"))

    result = run(ada_tab.block_user("Bob"))

    assert _toast(result) == ("success", "Bob is blocked.")
    assert ada_tab.active_username == ""
    assert ada_tab.messages == [] and ada_tab.has_older is False
    assert ada_tab.friend_list == [] and ada_tab.conversations == []
    assert [u.username for u in ada_tab.blocked] == ["Bob"]
    # Bob's tab, on the push, closes too: no longer friends (he is not told why).
    bob_tab.push("friends")
    assert bob_tab.active_username == "" and bob_tab.messages == []
    assert _error_text(run(bob_tab.open_conversation("Ada"))) == friends.NO_SUCH_CONVERSATION


@pytest.mark.parametrize("handler", ["block_user", "remove_friend"])
def test_ending_friendship_in_other_letter_case_closes_conversation(app_db, session, handler):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))
    run(chat.send_message({"body": "hello"}))

    run(getattr(chat, handler)("bob"))

    assert chat.friend_list == []
    assert chat.active_username == ""
    assert chat.messages == []


def test_remove_friend_closes_open_conversation(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))

    assert run(chat.remove_friend("Bob")) is None

    assert chat.active_username == "" and chat.friend_list == []
    assert _error_text(run(chat.remove_friend("Bob"))) == friends.NOT_A_FRIEND


def test_friend_requests_over_the_limit_show_a_toast_and_send_nothing(app_db, session, monkeypatch):
    monkeypatch.setattr(get_settings(), "friend_requests_per_hour", 1)
    ada, _bob, _cat = _person(session, "Ada"), _person(session, "Bob"), _person(session, "Cat")
    ada_tab = _loaded_tab(ada)
    assert _toast(run(ada_tab.send_request("bob"))) == ("success", "Friend request sent to bob.")

    kind, text = _toast(run(ada_tab.send_request("cat")))

    assert kind == "error"
    assert text.startswith("You have sent many friend requests recently. Try again in")
    assert [r.username for r in ada_tab.outgoing] == ["Bob"]


def test_searching_over_the_limit_shows_a_toast(app_db, session, monkeypatch):
    monkeypatch.setattr(get_settings(), "searches_per_minute", 2)
    ada, _bob = _person(session, "Ada"), _person(session, "Bob")
    ada_tab = _loaded_tab(ada)
    run(ada_tab.search("b"))
    run(ada_tab.search("bo"))

    kind, text = _toast(run(ada_tab.search("bob")))

    assert kind == "error"
    assert text.startswith("You are searching very fast. Try again in")


# ---------------------------------------------------------------------- settings, search


def test_turning_read_receipts_off_persists_and_hides_friends_receipts(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab, bob_tab = _loaded_tab(ada), _loaded_tab(bob)
    run(ada_tab.open_conversation("Bob"))
    run(ada_tab.send_message({"body": "seen?"}))
    run(bob_tab.open_conversation("Ada"))
    ada_tab.push("conversations")
    assert [m.status for m in ada_tab.messages] == ["read"]

    # Set in Settings (this tab's settings state); the user's open chats hear by push.
    assert run(ada_tab.set_read_receipts(False)) is None
    ada_tab.push("conversations")

    session.rollback()
    assert session.get(User, ada.id).read_receipts is False
    assert ada_tab.read_receipts is False
    assert [m.status for m in ada_tab.messages] == ["sent"]
    # A new tab (after a reload of the page) starts from the stored setting.
    reloaded = _loaded_tab(ada)
    run(reloaded.settings.load())
    assert reloaded.read_receipts is False
    run(reloaded.open_conversation("Bob"))
    assert [(m.body, m.status) for m in reloaded.messages] == [("seen?", "sent")]

    run(reloaded.set_read_receipts(True))
    reloaded.push("conversations")
    session.rollback()
    assert session.get(User, ada.id).read_receipts is True
    assert [m.status for m in reloaded.messages] == ["read"]


def test_search_returns_public_rows_only(app_db, session):
    ada = _person(session, "Ada")
    for name in ("Bob", "bonnie", "Carl"):
        users.check_register(session, username=name, password=PASSWORD, ip="192.0.2.1")
    chat = _loaded_tab(ada)

    assert run(chat.search("bo")) is None

    assert chat.search_query == "bo"
    assert [(r.username, r.display_name) for r in chat.search_results] == [
        ("Bob", "Bob"),
        ("bonnie", "bonnie"),
    ]
    # What reaches the browser: public fields only, no id; strangers get no picture or status.
    sent = chat.friends.dict()[chat.friends.get_full_name()]["search_results_rx_state_"]
    empty = {"avatar": "", "status": ""}
    assert [dataclasses.asdict(row) for row in sent] == [
        {"username": "Bob", "display_name": "Bob", "initial": "B", **empty},
        {"username": "bonnie", "display_name": "bonnie", "initial": "B", **empty},
    ]

    run(chat.search("   "))
    assert chat.search_results == []
    run(chat.search("ad"))  # never oneself
    assert chat.search_results == []


def test_friend_typing_shows_only_in_that_friends_open_conversation(app_db, session):
    ada, bob, cat = (_person(session, n) for n in ("Ada", "Bob", "Cat"))
    _befriend(session, ada, bob)
    _befriend(session, ada, cat)
    chat = _loaded_tab(ada)

    chat.push("typing", "Bob")
    assert (chat.friend_typing, chat.typing_seq) == (False, 0)

    run(chat.open_conversation("Cat"))
    chat.push("typing", "Bob")
    assert (chat.friend_typing, chat.typing_seq) == (False, 0)

    run(chat.open_conversation("Bob"))
    chat.push("typing", "Bob")
    assert (chat.friend_typing, chat.typing_seq) == (True, 1)
    chat.push("typing", "Bob")
    assert (chat.friend_typing, chat.typing_seq) == (True, 2)

    run(chat.close_conversation())
    assert chat.friend_typing is False


# ------------------------------------------------------------------------ live pushes


class _ConnectedTabs:
    """Stands in for the running app behind ``state.tabs.ReflexTabs``: these tabs are
    connected (the ``offline`` ones have a state but no socket any more), and
    ``modify_state`` hands over their state trees."""

    state_manager = None  # no Redis: nothing held to write back (``ReflexTabs.flush``)

    def __init__(self, *tabs: Any, offline: tuple[Any, ...] = ()) -> None:
        self.roots = {
            tab.router.session.client_token: tab.session.parent_state for tab in (*tabs, *offline)
        }
        gone = {tab.router.session.client_token for tab in offline}

        async def is_token_connected(token: str) -> bool:
            return token in self.roots and token not in gone

        # This worker's sockets, as Reflex's token manager records them.
        here = SimpleNamespace(instance_id="this-worker")
        self.event_namespace = SimpleNamespace(
            _token_manager=SimpleNamespace(
                is_token_connected=is_token_connected,
                instance_id="this-worker",
                token_to_socket={t: here for t in self.roots if t not in gone},
            )
        )

    @asynccontextmanager
    async def modify_state(self, token: Any):  # type: ignore[no-untyped-def]
        yield self.roots[token.ident]


def test_push_reaches_friends_open_tab(app_db, session, monkeypatch):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    bob_tab = _loaded_tab(bob)
    run(bob_tab.open_conversation("Ada"))
    push.install(ReflexTabs(_ConnectedTabs(bob_tab)))
    sending.check_send_message(session, actor_id=ada.id, username="Bob", body="ping")

    assert run(push.push_to_user(bob.id, Change(TabChange.MESSAGE_ARRIVED))) == 1
    assert _bodies(bob_tab) == ["ping"]


def test_tab_signed_out_elsewhere_receives_no_new_messages_by_push(app_db, session, monkeypatch):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab = _loaded_tab(ada)
    run(ada_tab.open_conversation("Bob"))
    token = ada_tab.router.session.client_token
    push.install(ReflexTabs(_ConnectedTabs(ada_tab)))
    auth.revoke_sessions(session, user_id=ada.id)  # "sign out everywhere"
    sending.check_send_message(session, actor_id=bob.id, username="Ada", body="secret")

    run(push.push_to_user(ada.id, Change(TabChange.MESSAGE_ARRIVED)))

    assert "secret" not in _bodies(ada_tab)
    session.rollback()
    assert session.exec(select(Message.read_at)).one() is None  # no receipt given
    assert token not in run(get_registry().tokens(ada.id))


def _sent_events(session: Session, sender: Person, to: str, body: str) -> list[Any]:
    """Send through the action (as the JSON API does) and return what it published."""
    with outbox.record() as published:
        message_actions.send_message(session, actor_id=sender.id, username=to, body=body)
    return [event for event, _skip in published]


def _deliver(events: list[Any]) -> None:
    for event in events:
        run(fanout.deliver(event))


class _Statements:
    """Counts the SQL statements the app's own engine runs (the live path's cost)."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        self.count = 0

    def _seen(self, *_args: Any) -> None:
        self.count += 1

    def __enter__(self) -> _Statements:
        sa_event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        sa_event.remove(self.engine, "before_cursor_execute", self._seen)


def test_new_message_is_handed_to_every_tab_as_its_user_sees_it(app_db, session):
    """The hot path: the fan-out reads the message once per user and each tab appends it
    and updates its one sidebar row: open conversation (read at once), another conversation
    open (unread count, first row), and the sender's other tab (its own message)."""
    ada, bob, cyd = _person(session, "Ada"), _person(session, "Bob"), _person(session, "Cyd")
    _befriend(session, ada, bob)
    _befriend(session, bob, cyd)
    _sent_events(session, bob, "Cyd", "older chat")
    _sent_events(session, bob, "Ada", "first")
    bob_reading, bob_elsewhere = _loaded_tab(bob), _loaded_tab(bob)
    ada_typing, ada_other = _loaded_tab(ada), _loaded_tab(ada)
    run(bob_reading.open_conversation("Ada"))
    run(bob_elsewhere.open_conversation("Cyd"))
    run(ada_other.open_conversation("Bob"))
    push.install(ReflexTabs(_ConnectedTabs(bob_reading, bob_elsewhere, ada_typing, ada_other)))
    bob_reading.push("typing", "Ada")

    _deliver(_sent_events(session, ada, "Bob", "hello <b>Bob</b>"))

    assert _bodies(bob_reading) == ["first", "hello <b>Bob</b>"]
    assert bob_reading.friend_typing is False
    assert [(r.username, r.unread) for r in bob_reading.conversations] == [("Ada", 0), ("Cyd", 0)]
    assert _bodies(bob_elsewhere) == ["older chat"]
    assert [(r.username, r.unread, r.preview) for r in bob_elsewhere.conversations] == [
        ("Ada", 1, "hello <b>Bob</b>"),
        ("Cyd", 0, "You: older chat"),
    ]
    assert _bodies(ada_other) == ["first", "hello <b>Bob</b>"]
    assert [m.mine for m in ada_other.messages] == [False, True]
    assert ada_other.conversations[0].preview == "You: hello <b>Bob</b>"
    session.rollback()  # the open tab read it: the database says so
    read = session.exec(select(Message.read_at).where(Message.body == "hello <b>Bob</b>")).one()
    assert read is not None


def test_a_new_message_costs_the_same_however_many_conversations(app_db, session, database_url):
    """Showing a new message re-reads neither the page nor the conversation list, so the
    number of statements does not grow with the recipient's conversations."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    _sent_events(session, ada, "Bob", "first")
    bob_tab = _loaded_tab(bob)
    run(bob_tab.open_conversation("Ada"))
    push.install(ReflexTabs(_ConnectedTabs(bob_tab)))

    def statements_for_one_message(body: str) -> int:
        events = _sent_events(session, ada, "Bob", body)
        with _Statements(database_url) as seen:
            _deliver(events)
        assert _bodies(bob_tab)[-1] == body
        return seen.count

    few = statements_for_one_message("with one conversation")
    for n in range(6):
        friend = _person(session, f"Friend{n}")
        _befriend(session, bob, friend)
        _sent_events(session, friend, "Bob", "hi")
    bob_tab.push("conversations")
    assert len(bob_tab.conversations) == 7
    many = statements_for_one_message("with seven conversations")
    assert many == few
    # Handed over as stored, then under the tab's lock one UPDATE checks the session and
    # the friendship and marks it read: 21 statements when every push re-read the page and
    # the list, 11 with three separate checks, 8 when the fan-out read the message first.
    # More means the hot path regressed.
    assert few == 1


def test_an_after_read_message_arriving_in_an_open_conversation_starts_its_countdown(
    app_db, session, database_url
):
    """A message read on arrival is one statement with no transaction around it, unless
    reading it starts an after-read countdown: its deadline is a second write that must
    commit with the read, so that read takes the transaction."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    _sent_events(session, ada, "Bob", "first")
    bob_tab = _loaded_tab(bob)
    run(bob_tab.open_conversation("Ada"))
    push.install(ReflexTabs(_ConnectedTabs(bob_tab)))
    with outbox.record() as published:
        message_actions.send_message(
            session,
            actor_id=ada.id,
            username="Bob",
            body="read me",
            timer_seconds=300,
            timer_mode="after_read",
        )
    events = [event for event, _skip in published]

    autocommit: list[bool] = []  # per write of the countdown: outside a transaction?

    def seen(conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith("UPDATE messages SET expires_at"):
            options = conn.get_execution_options()
            autocommit.append(options.get("isolation_level") == "AUTOCOMMIT")

    engine = engine_for(database_url)
    sa_event.listen(engine, "before_cursor_execute", seen)
    try:
        _deliver(events)
    finally:
        sa_event.remove(engine, "before_cursor_execute", seen)

    assert _bodies(bob_tab)[-1] == "read me"
    assert autocommit == [False]  # the countdown commits with the read, in one transaction
    session.expire_all()
    [row] = [m for m in session.exec(select(Message)).all() if m.body == "read me"]
    assert row.read_at is not None
    assert row.expires_at == row.read_at + timedelta(seconds=300)


def test_a_first_message_adds_its_sidebar_row_without_reading_the_list(
    app_db, session, database_url
):
    """The first message of a conversation builds its sidebar row from the friend list the
    tab holds: it costs what any later message costs, and the rows equal a full re-read."""
    ada, bob, cyd = _person(session, "Ada"), _person(session, "Bob"), _person(session, "Cyd")
    _befriend(session, ada, bob)
    _befriend(session, cyd, bob)
    _sent_events(session, ada, "Bob", "hello")
    bob_tab = _loaded_tab(bob)
    run(bob_tab.open_conversation("Ada"))
    push.install(ReflexTabs(_ConnectedTabs(bob_tab)))

    def statements_for(body: str) -> int:
        events = _sent_events(session, cyd, "Bob", body)
        with _Statements(database_url) as seen:
            _deliver(events)
        return seen.count

    first = statements_for("first from Cyd")
    assert [(r.username, r.unread, r.preview) for r in bob_tab.conversations] == [
        ("Cyd", 1, "first from Cyd"),
        ("Ada", 0, "hello"),
    ]
    assert first == statements_for("second from Cyd")
    shown = [dataclasses.asdict(r) for r in bob_tab.conversations]
    bob_tab.push("conversations")
    assert [dataclasses.asdict(r) for r in bob_tab.conversations] == shown


def test_rows_added_one_by_one_equal_the_page_built_at_once(app_db, session):
    """New messages add one row each (not a rebuild of the page); the rows, with their
    grouping and day separators, are exactly what a full rebuild gives."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    _sent_events(session, bob, "Ada", "before")
    bob_tab, ada_tab = _loaded_tab(bob), _loaded_tab(ada)
    run(bob_tab.open_conversation("Ada"))
    run(ada_tab.open_conversation("Bob"))
    push.install(ReflexTabs(_ConnectedTabs(bob_tab)))
    for body in ("one", "two", "three"):
        _deliver(_sent_events(session, ada, "Bob", body))
    run(bob_tab.send_message({"body": "mine"}))
    added = [dataclasses.asdict(row) for row in bob_tab.messages]

    bob_tab.messages_state._show()

    assert [dataclasses.asdict(row) for row in bob_tab.messages] == added
    assert [(r["body"], r["grouped"], r["show_day"]) for r in added] == [
        ("before", False, True),
        ("one", False, False),
        ("two", True, False),
        ("three", True, False),
        ("mine", False, False),
    ]


def test_a_new_message_sends_its_row_not_the_page(app_db, session):
    """A delta carries every changed list whole: a message arriving on an open page changes
    only ``arrived`` (a few rows), never ``messages`` (the page), until ``ARRIVED_MAX`` rows
    have come; then the page takes them in one delta, and what is shown stays the same."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    for i in range(30):
        _sent_events(session, ada, "Bob", f"earlier {i}")
    bob_tab = _loaded_tab(bob)
    run(bob_tab.open_conversation("Ada"))
    push.install(ReflexTabs(_ConnectedTabs(bob_tab)))
    root = bob_tab.session.parent_state
    page = bob_tab.messages_state.get_full_name()

    def delta_for(body: str) -> dict[str, Any]:
        root._clean()
        _deliver(_sent_events(session, ada, "Bob", body))
        return root.get_delta().get(page, {})

    first = delta_for("new 0")
    assert [row.body for row in first["arrived_rx_state_"]] == ["new 0"]
    assert "messages_rx_state_" not in first
    for i in range(1, ARRIVED_MAX):
        assert "messages_rx_state_" not in delta_for(f"new {i}")
    folded = delta_for(f"new {ARRIVED_MAX}")
    assert len(folded["messages_rx_state_"]) == 30 + ARRIVED_MAX + 1
    assert folded["arrived_rx_state_"] == []
    assert _bodies(bob_tab) == [f"earlier {i}" for i in range(30)] + [
        f"new {i}" for i in range(ARRIVED_MAX + 1)
    ]


def test_a_long_open_page_takes_new_messages_without_rebuilding_until_it_is_cut_back(
    app_db, session
):
    """An open page goes on taking new messages as single rows past ``PAGE_MAX``: it is cut
    back to the newest ``PAGE_MAX`` (one rebuild) only once it holds ``KEPT_MAX``, not on
    every message past the hundredth (which sent the whole page with each)."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    for i in range(conversations.PAGE_DEFAULT):
        _sent_events(session, ada, "Bob", f"earlier {i}")
    bob_tab = _loaded_tab(bob)
    run(bob_tab.open_conversation("Ada"))
    assert len(bob_tab.messages) == conversations.PAGE_DEFAULT
    push.install(ReflexTabs(_ConnectedTabs(bob_tab)))
    root = bob_tab.session.parent_state
    page = bob_tab.messages_state.get_full_name()

    arriving = 200
    pages_sent = 0
    for i in range(arriving):
        root._clean()
        _deliver(_sent_events(session, ada, "Bob", f"new {i}"))
        pages_sent += "messages_rx_state_" in root.get_delta().get(page, {})

    # A page-sized delta per ``ARRIVED_MAX`` messages (the folds) and per cut, not per
    # message (the page passed ``PAGE_MAX`` after 50 of these).
    assert pages_sent <= arriving // ARRIVED_MAX + 3
    every = [f"earlier {i}" for i in range(conversations.PAGE_DEFAULT)]
    every += [f"new {i}" for i in range(arriving)]
    shown = _bodies(bob_tab)
    assert conversations.PAGE_MAX <= len(shown) <= KEPT_MAX
    assert shown == every[-len(shown) :]


def test_a_message_deleted_before_its_push_lands_is_not_shown(app_db, session):
    """The message was stored a moment before it was deleted: the tab checks it is still
    visible under its own lock, so it never reappears after the deletion's re-read."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    bob_tab = _loaded_tab(bob)
    run(bob_tab.open_conversation("Ada"))
    push.install(ReflexTabs(_ConnectedTabs(bob_tab)))
    [sent] = _sent_events(session, ada, "Bob", "oops")
    conversations.delete_for_everyone(session, actor_id=ada.id, message_id=sent.message.id)

    run(push.push_to_user(bob.id, Change(TabChange.MESSAGE_ARRIVED, message=sent.message)))

    assert _bodies(bob_tab) == []
    assert bob_tab.conversations == []  # its first message is gone: no row either


@pytest.mark.parametrize("conversation_open", [True, False])
@pytest.mark.parametrize("parting", ["block", "remove_friend"])
def test_a_message_from_someone_no_longer_a_friend_is_not_shown_when_its_push_lands(
    app_db, session, conversation_open, parting
):
    """Stored while they were friends, handed over after a block or unfriending: the tab
    checks the friendship in the same statement as the session and the read."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    bob_tab = _loaded_tab(bob)
    if conversation_open:
        run(bob_tab.open_conversation("Ada"))
    push.install(ReflexTabs(_ConnectedTabs(bob_tab)))
    [sent] = _sent_events(session, ada, "Bob", "after all")
    if parting == "block":
        blocks.block(session, actor_id=bob.id, username="Ada")
    else:
        friends.remove_friend(session, actor_id=bob.id, username="Ada")

    run(push.push_to_user(bob.id, Change(TabChange.MESSAGE_ARRIVED, message=sent.message)))

    assert "after all" not in _bodies(bob_tab)
    assert all(row.preview != "after all" for row in bob_tab.conversations)
    session.rollback()
    assert session.exec(select(Message.read_at)).one() is None  # not read either


@pytest.mark.parametrize("conversation_open", [True, False])
def test_a_new_message_handed_over_reaches_no_tab_whose_session_ended(
    app_db, session, conversation_open
):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab = _loaded_tab(ada)
    if conversation_open:
        run(ada_tab.open_conversation("Bob"))
    token = ada_tab.router.session.client_token
    push.install(ReflexTabs(_ConnectedTabs(ada_tab)))
    [sent] = _sent_events(session, bob, "Ada", "secret")
    auth.revoke_sessions(session, user_id=ada.id)  # "sign out everywhere"

    _deliver([sent])

    assert "secret" not in _bodies(ada_tab)
    assert all(row.preview != "secret" for row in ada_tab.conversations)
    session.rollback()
    assert session.exec(select(Message.read_at)).one() is None  # no receipt given
    assert token not in run(get_registry().tokens(ada.id))


def test_first_message_of_a_new_conversation_adds_its_row(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    bob_tab = _loaded_tab(bob)
    assert bob_tab.conversations == []
    push.install(ReflexTabs(_ConnectedTabs(bob_tab)))

    _deliver(_sent_events(session, ada, "Bob", "hello"))

    assert [(r.username, r.unread, r.preview) for r in bob_tab.conversations] == [
        ("Ada", 1, "hello")
    ]
    assert bob_tab.total_unread == 1


def test_a_deleted_message_leaves_the_state_of_a_tab_whose_socket_is_gone(app_db, session):
    """Reflex keeps a closed tab's state (in Redis with several workers) for an hour: the
    deletion's re-read still reaches it, and the tab then leaves the registry."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    [sent] = _sent_events(session, ada, "Bob", "take this back")
    bob_tab = _loaded_tab(bob)
    run(bob_tab.open_conversation("Ada"))
    assert _bodies(bob_tab) == ["take this back"]
    push.install(ReflexTabs(_ConnectedTabs(offline=(bob_tab,))))

    with outbox.record() as published:
        message_actions.delete_for_everyone(session, actor_id=ada.id, message_id=sent.message.id)
    _deliver([event for event, _skip in published])

    assert _bodies(bob_tab) == []
    assert "take this back" not in repr(bob_tab.messages_state._views)
    assert bob_tab.router.session.client_token not in run(get_registry().tokens(bob.id))


def test_ending_sessions_empties_tabs_whose_socket_is_gone(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    _sent_events(session, bob, "Ada", "for Ada only")
    ada_tab = _loaded_tab(ada)
    run(ada_tab.open_conversation("Bob"))
    push.install(ReflexTabs(_ConnectedTabs(offline=(ada_tab,))))

    auth.revoke_sessions(session, user_id=ada.id)
    assert run(push.sign_out_ended_sessions(ada.id)) == 0  # nobody to send to the login page

    assert _bodies(ada_tab) == [] and ada_tab.conversations == []
    assert (ada_tab.username, ada_tab.signed_in) == ("", False)
    assert run(get_registry().tokens(ada.id)) == set()


@pytest.mark.parametrize("bad_id", ["abc", "1.5", "", None])
def test_non_numeric_request_id_from_the_browser_is_a_clear_error(app_db, session, bad_id):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    sent = friend_requests.send_request(session, actor_id=ada.id, username="Bob")
    bob_tab = _loaded_tab(bob)
    for handler in (bob_tab.accept_request, bob_tab.decline_request, bob_tab.cancel_request):
        assert _error_text(run(handler(bad_id))) == "No such friend request."
    session.rollback()
    row = session.get(Friendship, sent.request_id)
    assert row is not None and row.status == friend_requests.PENDING


# ----------------------------------------------------------------------------- files


def _pending_upload(person: Person, data: bytes, name: str) -> int:
    from iris_reflex.db import session_scope
    from iris_reflex.services import storage, uploads

    path = storage.incoming_path()
    path.write_bytes(data)
    with session_scope() as db:
        return uploads.store_upload(db, actor_id=person.id, source=path, name=name).id


def test_files_go_with_the_message_and_show_in_both_tabs(app_db, session, tmp_path, monkeypatch):
    from iris_reflex.settings import get_settings
    from tests import media_samples

    monkeypatch.setattr(get_settings(), "upload_dir", tmp_path / "uploads")
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    ada_tab, bob_tab = _loaded_tab(ada), _loaded_tab(bob)
    run(ada_tab.open_conversation("Bob"))
    photo = _pending_upload(ada, media_samples.png(), "p.png")
    doc = _pending_upload(ada, b"notes", "n.txt")

    sent = run(ada_tab.send_message({"body": "", "attachment_ids": f"{doc},{photo}"}))
    # The files went with the message: the tray is told to let them go.
    assert action_name(sent) == "_call_script"
    assert action_args(sent)["javascript_code"] == CLEAR_SENT_FILES
    [row] = ada_tab.messages
    assert row.body == ""
    # Pictures first, then file cards; URLs are backend paths, never storage keys.
    assert [(a.kind, a.name, a.url) for a in row.attachments] == [
        ("image", "p.png", f"/api/attachments/{photo}"),
        ("file", "n.txt", f"/api/attachments/{doc}"),
    ]
    assert row.attachments[0].thumb_url == f"/api/attachments/{photo}/thumbnail"
    assert row.attachments[0].aspect == "64 / 48"
    assert ada_tab.conversations[0].preview == "You: 📎 2 files"
    run(bob_tab.open_conversation("Ada"))
    assert [a.name for a in bob_tab.messages[0].attachments] == ["p.png", "n.txt"]


@pytest.mark.parametrize("ids", ["abc", "999999", "1,,x", "2147483648", "-1"])
def test_bad_attachment_ids_are_refused_and_the_tray_gets_its_files_back(app_db, session, ids):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))
    result = run(chat.send_message({"body": "with files", "attachment_ids": ids}))
    assert _error_text(result) == "A file to send is no longer available: attach it again."
    assert action_name(result[1]) == "_call_script"
    assert "restore" in action_args(result[1])["javascript_code"]
    assert _message_count(session) == 0


def test_chats_search_finds_conversations_and_friends_as_you_type(app_db, session):
    ada, bob, cyd = _person(session, "Ada"), _person(session, "Bob"), _person(session, "Cyd")
    _befriend(session, ada, bob)
    _befriend(session, ada, cyd)
    chat = _loaded_tab(ada)
    # No conversation yet: every friend is offered.
    assert [(r.username, r.preview) for r in chat.chat_rows] == [
        ("Bob", "Start a conversation"),
        ("Cyd", "Start a conversation"),
    ]
    run(chat.open_conversation("Bob"))
    run(chat.send_message({"body": "hello"}))
    assert [r.username for r in chat.chat_rows] == ["Bob"]
    run(chat.set_chat_filter("c"))
    assert [(r.username, r.preview) for r in chat.chat_rows] == [("Cyd", "Start a conversation")]
    run(chat.set_chat_filter("B"))
    assert [(r.username, r.preview) for r in chat.chat_rows] == [("Bob", "You: hello")]
    run(chat.set_chat_filter("zz"))
    assert chat.chat_rows == []


def test_a_senders_close_messages_form_a_group(app_db, session):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))
    for body in ("one", "two"):
        run(chat.send_message({"body": body}))
    sending.check_send_message(session, actor_id=bob.id, username="Ada", body="three")

    chat.push("message_arrived")
    assert [(m.body, m.grouped) for m in chat.messages] == [
        ("one", False),
        ("two", True),
        ("three", False),
    ]


@pytest.mark.parametrize(("choice", "timed"), [("0", False), ("30", True), ("default", True)])
def test_the_picker_off_overrides_the_chat_default(app_db, session, choice, timed):
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    sending.set_conversation_timer(session, actor_id=ada.id, username="Bob", seconds=3600)
    chat = _loaded_tab(ada)
    run(chat.open_conversation("Bob"))
    run(chat.set_timer_choice(choice))
    assert run(chat.send_message({"body": "which timer?"})) is None
    [sent] = [m for m in chat.messages if m.body == "which timer?"]
    assert (sent.expires_ms > 0) is timed


def test_a_tab_whose_held_states_were_lost_reads_its_page_again(app_db, session):
    """With several workers a tab's states may come back older than what its screen shows
    (a refused write-back, ``ReflexTabs.on_refused_write_back``); the re-read shows every
    message again, as the tab's own user, and only while its session lives."""
    ada, bob = _person(session, "Ada"), _person(session, "Bob")
    _befriend(session, ada, bob)
    bob_tab = _loaded_tab(bob)
    run(bob_tab.open_conversation("Ada"))
    sending.check_send_message(session, actor_id=ada.id, username="Bob", body="ping")
    sending.check_send_message(session, actor_id=ada.id, username="Bob", body="pong")
    tabs = ReflexTabs(_ConnectedTabs(bob_tab))
    token = bob_tab.router.session.client_token
    assert _bodies(bob_tab) == []  # the older copy: opened before Ada wrote

    assert run(tabs.reread(token)) is True
    assert _bodies(bob_tab) == ["ping", "pong"]

    auth.revoke_sessions(session, user_id=bob.id)
    assert run(tabs.reread(token)) is False
