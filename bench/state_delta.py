"""What one event costs the websocket and the state store: delta bytes and state size.

Two friends, Ada and Bob, each with one tab whose home page has loaded and whose conversation
with the other is open (a page of messages on screen), plus a sidebar of other friends. The
script drives the real state classes through their event handlers and live-push hooks, as the
server does, against a throwaway database, and prints:

- the bytes of the JSON delta each tab is sent for one typing event (sender and receiver) and
  for one message (the sender's own tab, and the receiver's tab through the live push);
- the pickled size of each state class of one tab, which is what the disk or Redis state
  manager loads and stores for every event that touches that state, and their total (the
  state kept per connected tab).

Run: .venv/bin/python -m bench.state_delta [--messages 50] [--friends 20] [--database sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
from typing import Any

# Settings are read once: a secret for this process before anything imports the app.
os.environ.setdefault("IRIS_JWT_SECRET", "bench-secret-" + "x" * 40)
os.environ.setdefault("IRIS_UPLOAD_DIR", tempfile.mkdtemp(prefix="iris-bench-uploads-"))
for _limit in ("FRIEND_REQUESTS_PER_HOUR", "REGISTRATIONS_PER_HOUR", "SEARCHES_PER_MINUTE"):
    os.environ.setdefault(f"IRIS_{_limit}", "1000000")  # the benched people are made in bulk

import reflex as rx  # noqa: E402
from reflex.istate.data import RouterData  # noqa: E402
from sqlmodel import func, select  # noqa: E402

from bench.common import scratch_database  # noqa: E402
from iris_reflex.db import session_scope  # noqa: E402
from iris_reflex.models import Message  # noqa: E402
from iris_reflex.settings import get_settings  # noqa: E402

PASSWORD = "correct horse battery"


def _tab(cls: type[rx.State], cookie: str) -> Any:
    """A fresh state tree for one browser tab sending this cookie."""
    root = rx.State(_reflex_internal_init=True)
    root.router = RouterData.from_router_data(
        {
            "headers": {"cookie": cookie},
            "ip": "203.0.113.7",
            "pathname": "/",
            "token": secrets.token_hex(16),
        }
    )
    return root.get_substate(cls.get_full_name().split(".")[1:])


async def _delta_bytes(state: rx.State) -> int:
    """Bytes of the JSON delta this tab would be sent now; then the tab is clean again."""
    root = state._get_root_state()
    delta = await root._get_resolved_delta()
    root._clean()
    return len(json.dumps(delta, default=str).encode())


def _state_sizes(state: rx.State) -> dict[str, int]:
    """Pickled bytes of every state of this tab's tree (what a state manager stores)."""
    sizes: dict[str, int] = {}
    pending = [state._get_root_state()]
    while pending:
        current = pending.pop()
        sizes[type(current).__name__] = len(current._serialize())
        pending.extend(current.substates.values())
    return sizes


class Driver:
    """How a tab is opened and driven, for the state classes of this version of Iris."""

    @staticmethod
    async def open_home(cookie: str, *, friend: str) -> Any:
        from iris_reflex.state.conversation import ConversationState
        from iris_reflex.state.friends import FriendsState
        from iris_reflex.state.session import SessionState
        from iris_reflex.state.sidebar import SidebarState

        session = _tab(SessionState, cookie)
        await session.require_user()
        for cls in (SidebarState, FriendsState):
            await (await session.get_state(cls)).load()
        conversation = await session.get_state(ConversationState)
        await conversation.open_conversation(friend)
        return session

    @staticmethod
    async def typing(tab: Any) -> None:
        from iris_reflex.state.composer import ComposerState

        await (await tab.get_state(ComposerState)).typing("h")

    @staticmethod
    async def push_typing(tab: Any, username: str) -> None:
        from iris_reflex.live.events import Change, TabChange
        from iris_reflex.state.tabs import apply_change

        await apply_change(tab, Change(TabChange.TYPING, username))

    @staticmethod
    async def send(tab: Any, body: str) -> None:
        from iris_reflex.state.composer import ComposerState

        composer = await tab.get_state(ComposerState)
        await composer.send_message({"body": body, "attachment_ids": ""})

    @staticmethod
    async def push_message_arrived(tab: Any, message_id: int) -> None:
        """What the fan-out does for a new message: read it once as the tab's user, then
        the tab's hot path (appends one row; a re-read of the page where there is none)."""
        from iris_reflex.live.events import Change, TabChange
        from iris_reflex.services import auth, conversations
        from iris_reflex.state import tabs
        from iris_reflex.state.session import SessionState

        session = await tab.get_state(SessionState)
        show = getattr(tabs, "_show_new_message", None)
        if show is None:
            await tabs.apply_change(tab, Change(TabChange.MESSAGE_ARRIVED))
            return
        with session_scope() as db:
            view = conversations.get_message(db, actor_id=session._user_id, message_id=message_id)
        identity = auth.Identity(user_id=session._user_id, session_id=session._session_id)
        await show(session, identity, view)


async def measure(messages: int, friends_count: int) -> None:
    import iris_reflex.iris_reflex  # noqa: F401  (registers every state)
    from iris_reflex.paths import SESSION_COOKIE
    from iris_reflex.services import auth, friend_requests, sending, users

    def person(name: str) -> tuple[int, str]:
        with session_scope() as db:
            user = users.check_register(db, username=name, password=PASSWORD, ip="bench")
            signed = auth.login(db, username=name, password=PASSWORD, ip="198.51.100.1")
        assert user.id is not None
        return user.id, f"{SESSION_COOKIE}={signed.token}"

    def befriend(a_id: int, b_id: int) -> None:
        with session_scope() as db:
            b_name = users.access_user(db, b_id).username
            sent = friend_requests.send_request(db, actor_id=a_id, username=b_name)
            friend_requests.accept_request(db, actor_id=b_id, request_id=sent.request_id)

    ada_id, ada_cookie = person("ada")
    bob_id, bob_cookie = person("bob")
    befriend(ada_id, bob_id)
    for n in range(friends_count):
        other_id, _ = person(f"friend{n}")
        befriend(bob_id, other_id)
        with session_scope() as db:
            sending.check_send_message(
                db, actor_id=other_id, username="bob", body=f"hello from friend {n}"
            )
    for n in range(messages):
        with session_scope() as db:
            sending.check_send_message(
                db,
                actor_id=ada_id if n % 2 else bob_id,
                username="bob" if n % 2 else "ada",
                body=f"message number {n}: " + "lorem ipsum dolor sit amet " * 3,
            )

    ada = await Driver.open_home(ada_cookie, friend="bob")
    bob = await Driver.open_home(bob_cookie, friend="ada")
    for tab in (ada, bob):
        await _delta_bytes(tab)

    print(f"tab: {messages} messages in the open conversation, {friends_count + 1} conversations")
    await Driver.typing(ada)
    typing_sender = await _delta_bytes(ada)
    await Driver.push_typing(bob, "ada")
    typing_receiver = await _delta_bytes(bob)
    print(
        f"typing event   sender delta {typing_sender:>8,} B"
        f"   receiver delta {typing_receiver:>8,} B"
    )

    await Driver.send(ada, "one more message")
    send_sender = await _delta_bytes(ada)
    with session_scope() as db:
        newest = db.exec(select(func.max(Message.id))).one()
    await Driver.push_message_arrived(bob, newest)
    send_receiver = await _delta_bytes(bob)
    print(f"one message    sender delta {send_sender:>8,} B   receiver delta {send_receiver:>8,} B")

    sizes = _state_sizes(bob)
    for name, size in sorted(sizes.items()):
        print(f"  {name:<32} {size:>8,} B pickled")
    print(f"state per connected tab (all states pickled): {sum(sizes.values()):,} B")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--friends", type=int, default=20)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    with scratch_database(args.database) as url:
        get_settings().database_url = url
        asyncio.run(measure(args.messages, args.friends))


if __name__ == "__main__":
    main()
