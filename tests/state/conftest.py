"""Reflex states driven directly through their event handlers, against a real database."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import reflex as rx
from reflex.istate.data import RouterData

import iris_reflex.iris_reflex  # noqa: F401  (registers every state on rx.State)
from iris_reflex.settings import get_settings


@pytest.fixture
def app_db(database_url: str, session, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the app's own sessions (``session_scope``) at this module's test database."""
    monkeypatch.setattr(get_settings(), "database_url", database_url)
    yield database_url


def make_state(
    cls: type[rx.State], *, cookie: str = "", ip: str = "203.0.113.7", pathname: str = "/"
) -> Any:
    """A fresh state tree for one browser tab (its own client token), on ``pathname``, sending
    this cookie header."""
    root = rx.State(_reflex_internal_init=True)
    root.router = RouterData.from_router_data(
        {
            "headers": {"cookie": cookie} if cookie else {},
            "ip": ip,
            "pathname": pathname,
            "token": secrets.token_hex(16),
        }
    )
    return root.get_substate(cls.get_full_name().split(".")[1:])


def action_name(spec: Any) -> str:
    """The name of the client action an event handler returned (``_redirect``, ...)."""
    return spec.handler.fn.__qualname__


def action_args(spec: Any) -> dict[str, Any]:
    """The literal arguments of a returned client action."""
    return {name._js_expr: getattr(value, "_var_value", None) for name, value in spec.args}


class Tab:
    """One browser tab of the home page: its state tree, reached by attribute as the page
    reaches it (``tab.messages`` is ``MessagesState.messages``, ``tab.search(...)`` is
    ``FriendsState.search``), plus what a live push runs on it."""

    def __init__(self, cookie: str = "") -> None:
        from iris_reflex.state.composer import ComposerState
        from iris_reflex.state.conversation import ConversationState, MessagesState
        from iris_reflex.state.friends import FriendsState
        from iris_reflex.state.session import SessionState
        from iris_reflex.state.settings import SettingsState
        from iris_reflex.state.sidebar import SidebarState

        session = make_state(SessionState, cookie=cookie)
        root = session.parent_state

        def sub(cls: type[rx.State]) -> Any:
            return root.get_substate(cls.get_full_name().split(".")[1:])

        states = {
            "composer": sub(ComposerState),
            "messages_state": sub(MessagesState),
            "conversation": sub(ConversationState),
            "friends": sub(FriendsState),
            "sidebar": sub(SidebarState),
            "session": session,
            "settings": sub(SettingsState),
        }
        object.__setattr__(self, "_states", states)
        for name, state in states.items():
            object.__setattr__(self, name, state)

    def _owner(self, name: str) -> Any:
        for state in self._states.values():
            cls = type(state)
            if name in cls.__dict__ or name in cls.__dict__.get("__annotations__", {}):
                return state
        return self._states["session"]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner(name), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._owner(name), name, value)

    @property
    def messages(self) -> list[Any]:
        """Every row on screen: the page as built, then the rows that arrived since."""
        state = self._states["messages_state"]
        return [*state.messages, *state.arrived]

    @property
    def conversations(self) -> list[Any]:
        """Every sidebar row (the browser is sent only the filtered ``chat_rows``)."""
        return list(self._states["sidebar"]._conversations)

    async def load(self) -> Any:
        """The home page's on_load after ``require_user``: sidebar, friends, time zone."""
        result = await self._states["sidebar"].load()
        if result is not None:
            return result
        await self._states["friends"].load()
        return await self._states["conversation"].detect_timezone()

    async def apush(self, kind: str, username: str = "", message_ids: tuple[int, ...] = ()) -> None:
        """What a live push of ``kind`` runs on this tab."""
        from iris_reflex.live.events import Change, TabChange
        from iris_reflex.state.tabs import apply_change

        change = Change(TabChange(kind), username, message_ids)
        await apply_change(self._states["session"], change)

    def push(self, kind: str, username: str = "", message_ids: tuple[int, ...] = ()) -> None:
        asyncio.run(self.apush(kind, username, message_ids))
