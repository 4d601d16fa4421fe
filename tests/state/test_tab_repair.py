"""A tab whose held states were lost is re-read (``ReflexTabs.reread``), also when the stored
copy it falls back to is older than its sign-in: its websocket's session cookie, held by the
worker it is connected to, says who it is, as for its own events, and the conversation its
screen still shows is closed (the copy does not know which one it was).

Reflex's own Redis token manager on a real Redis (the socket record that says which worker
holds the tab), Reflex's memory state manager for the tab's states (a fresh tab's, as a copy
that knows no user is), a real database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from types import SimpleNamespace
from typing import Any

import pytest
from reflex.istate.manager.memory import StateManagerMemory
from reflex.istate.manager.token import BaseStateToken
from reflex.utils.token_manager import RedisTokenManager
from sqlmodel import Session

from iris_reflex.services import auth
from iris_reflex.state import connections
from iris_reflex.state.conversation import ConversationState
from iris_reflex.state.session import SessionState
from iris_reflex.state.tabs import ReflexTabs
from tests.redis_server import REDIS_URL, require_redis
from tests.state.test_settings_state import (  # noqa: F401 (fixtures used by name)
    Person,
    _person,
    fast_argon2,
)


class Worker:
    """What ``ReflexTabs`` reads of a backend worker: its state manager, its token manager,
    and its ``modify_state`` (without the delta to the browser, which this test does not
    have)."""

    def __init__(self) -> None:
        import redis.asyncio as aioredis

        self.state_manager = StateManagerMemory()
        self.tokens = RedisTokenManager(aioredis.from_url(REDIS_URL))
        self.event_namespace = SimpleNamespace(_token_manager=self.tokens)
        self.modify_state = self.state_manager.modify_state

    async def close(self) -> None:
        await self.state_manager.close()
        await self.tokens.redis.aclose()


async def _reread_fresh_tab(
    person: Person, *, cookie: bool = True, elsewhere: bool = False
) -> tuple[bool, int | None, str | None]:
    """A tab whose stored copy knows no user (nothing stored yet), its socket connected to
    this worker (or, ``elsewhere``, to another) with ``person``'s cookie: re-read it, and
    read back who its state says it is."""
    worker, token, sid = Worker(), f"repair{secrets.token_hex(8)}", secrets.token_hex(8)
    try:
        await worker.tokens.link_token_to_sid(token, sid)
        if elsewhere:
            record = worker.tokens.token_to_socket[token]
            worker.tokens.token_to_socket[token] = dataclasses.replace(
                record, instance_id="another-worker"
            )
        if cookie:
            connections.without_session_cookie(sid, {"headers": {"cookie": person.cookie}})
        repaired = await ReflexTabs(worker).reread(token)
        root: Any = await worker.state_manager.get_state(
            BaseStateToken(ident=token, cls=SessionState)
        )
        session = root.get_substate(SessionState.get_full_name().split(".")[1:])
        conversation = root.get_substate(ConversationState.get_full_name().split(".")[1:])
        # Re-read as someone: the conversation the screen showed goes in the delta, closed.
        assert ("active_username" in conversation.dirty_vars) is repaired
        return repaired, session._user_id, session._session_id
    finally:
        connections.forget(sid)
        await worker.close()


@pytest.fixture
def redis_ok() -> None:
    require_redis()


def test_a_tab_whose_copy_knows_no_user_is_reread_as_its_socket_cookie_proves(
    app_db: str, session: Session, redis_ok: None
):
    ada = _person(session, "Ada")
    assert asyncio.run(_reread_fresh_tab(ada)) == (True, ada.id, ada.session_id)


@pytest.mark.parametrize("case", ["no-cookie", "socket-on-another-worker", "session-revoked"])
def test_a_tab_nobody_can_vouch_for_is_left_unsigned(
    app_db: str, session: Session, redis_ok: None, case: str
):
    ada = _person(session, "Ada")
    if case == "session-revoked":
        auth.logout(session, auth.Identity(user_id=ada.id, session_id=ada.session_id))
    repaired = asyncio.run(
        _reread_fresh_tab(
            ada, cookie=case != "no-cookie", elsewhere=case == "socket-on-another-worker"
        )
    )
    assert repaired == (False, None, None)
