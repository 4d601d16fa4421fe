"""Pushing a change into every open tab of a user.

A push carries ids and a kind of change, never message content: each tab's state re-reads
what it may show through the services, as its own user, so expiry, deletion and blocks are
applied per viewer and nothing is ever sent that a read would not return.

Reflex's ``app.modify_state`` changes another tab's state and sends it the delta (through
Redis when that tab is connected to another worker). It locks that tab's state, so a handler
must never push to its own tab: callers pass ``skip_token`` and update their own state
directly. Before touching a tab we check that it is still signed in as the same user, with a
session that has not been revoked: a tab that logged out and in as someone else keeps its
client token, and a session ended on another device must stop receiving at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import reflex as rx
from reflex.state import StateUpdate
from reflex_base.event import Event

from iris_reflex.db import session_scope
from iris_reflex.live.registry import get_registry
from iris_reflex.services import auth

if TYPE_CHECKING:
    from iris_reflex.state.chat import ChatState

log = logging.getLogger("iris.live")

Apply = Callable[["ChatState"], Awaitable[None] | None]


def _app() -> Any:
    from iris_reflex.iris_reflex import app

    return app


async def _is_connected(app: Any, token: str) -> bool:
    namespace = app.event_namespace
    if namespace is None:
        return False
    return bool(await namespace._token_manager.is_token_connected(token))


async def _push_one(app: Any, user_id: int, token: str, apply: Apply) -> None:
    from iris_reflex.state.chat import ChatState
    from iris_reflex.state.session import SessionState

    if not await _is_connected(app, token):
        await get_registry().remove(user_id, token)
        return
    async with app.modify_state(rx.BaseStateToken(ident=token, cls=ChatState)) as root:
        session_state = await root.get_state(SessionState)
        if session_state._user_id != user_id or not _still_signed_in(
            user_id, session_state._session_id
        ):
            await get_registry().remove(user_id, token)
            return
        chat = await root.get_state(ChatState)
        result = apply(chat)
        if asyncio.iscoroutine(result):
            await result


def _still_signed_in(user_id: int, session_id: str | None) -> bool:
    """A tab whose session was revoked elsewhere (logout, password change) gets nothing."""
    if session_id is None:
        return False
    with session_scope() as db:
        return auth.session_is_live(db, auth.Identity(user_id=user_id, session_id=session_id))


async def push_to_user(user_id: int, apply: Apply, *, skip_token: str | None = None) -> int:
    """Run ``apply`` on the ChatState of each of the user's open tabs; returns tabs reached."""
    app = _app()
    tokens = [t for t in await get_registry().tokens(user_id) if t != skip_token]
    results = await asyncio.gather(
        *(_push_one(app, user_id, token, apply) for token in tokens), return_exceptions=True
    )
    for token, result in zip(tokens, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("push to tab %s… of user %s failed: %r", token[:8], user_id, result)
    return sum(1 for r in results if not isinstance(r, BaseException))


async def is_online(user_id: int) -> bool:
    """Whether the user has at least one connected tab."""
    app = _app()
    for token in await get_registry().tokens(user_id):
        if await _is_connected(app, token):
            return True
    return False


async def _send_tab_to_login(app: Any, user_id: int, token: str) -> bool:
    """Sign one open tab out if its session no longer works; whether it was."""
    from iris_reflex.state.chat import ChatState
    from iris_reflex.state.session import LOGIN_ROUTE, SessionState

    if not await _is_connected(app, token):
        await get_registry().remove(user_id, token)
        return False
    async with app.modify_state(rx.BaseStateToken(ident=token, cls=SessionState)) as root:
        session_state = await root.get_state(SessionState)
        if session_state._user_id != user_id:
            await get_registry().remove(user_id, token)
            return False
        if _still_signed_in(user_id, session_state._session_id):
            return False  # the same session as the asking tab (another tab of this browser)
        chat = await root.get_state(ChatState)
        await chat._forget_tab()
        session_state._forget()
    await get_registry().remove(user_id, token)
    redirect = Event.from_event_type([rx.redirect(LOGIN_ROUTE)])
    await app.event_namespace.emit_update(StateUpdate(events=redirect), token)
    return True


async def sign_out_ended_sessions(user_id: int, *, skip_token: str) -> int:
    """Every open tab of ``user_id`` whose session has ended (password change, sign out
    everywhere, account deletion) is cleared and sent to the login page at once; returns
    how many. Tabs of the asking session are left alone."""
    app = _app()
    sent = 0
    for token in await get_registry().tokens(user_id):
        if token == skip_token:
            continue
        try:
            sent += await _send_tab_to_login(app, user_id, token)
        except Exception:  # noqa: BLE001 - one broken tab must not stop the others
            log.warning("could not sign out tab %s… of user %s", token[:8], user_id)
    return sent
