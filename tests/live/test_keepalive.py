"""The keep-alive of stored tab state, with Reflex's own Redis state and token managers on a
real Redis, at a 2-second expiry renewed every 0.3 s.

A connected tab that sends nothing keeps every state key (and its open conversation) for
several expiry periods; a closed tab, and a tab connected to another worker, are not renewed
here and lose their state keys within the expiry; the renewal names exactly the keys Reflex
wrote; and a tab that comes back after its state expired keeps its token and starts afresh.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest
import reflex as rx
from reflex.istate.manager.redis import StateManagerRedis
from reflex.istate.manager.token import BaseStateToken
from reflex.state import BaseState
from reflex.utils.token_manager import RedisTokenManager

import iris_reflex.iris_reflex  # noqa: F401  (registers every state on rx.State)
from iris_reflex.live import keepalive
from iris_reflex.settings import PROJECT_ROOT
from iris_reflex.state import rows
from iris_reflex.state.conversation import ConversationState, MessagesState
from iris_reflex.state.tabs import ReflexTabs
from tests.redis_server import REDIS_URL, require_redis

EXPIRY = 2  # seconds: Reflex's redis_token_expiration in this test
INTERVAL = 0.3  # seconds between renewals (the app uses EXPIRY / 3)


@pytest.fixture
def redis_ok() -> None:
    require_redis()


class Worker:
    """What ``ReflexTabs`` reads of a running backend worker: Reflex's own Redis state
    manager and Redis token manager, real, both at the test's expiry."""

    def __init__(self) -> None:
        import redis.asyncio as aioredis

        self.state_manager = StateManagerRedis(
            redis=aioredis.from_url(REDIS_URL), token_expiration=EXPIRY
        )
        tokens = RedisTokenManager(aioredis.from_url(REDIS_URL))
        tokens.token_expiration = EXPIRY
        self.tokens = tokens
        self.event_namespace = SimpleNamespace(_token_manager=tokens)

    async def close(self) -> None:
        await self.state_manager.close()
        await self.tokens.close()


def _token() -> str:
    return f"keepalive{secrets.token_hex(8)}"


def _messages(root: BaseState) -> Any:
    return root.get_substate(MessagesState.get_full_name().split(".")[1:])


def _conversation(root: BaseState) -> Any:
    return root.get_substate(ConversationState.get_full_name().split(".")[1:])


async def _open_conversation(worker: Worker, token: str) -> None:
    """One event's worth: the tab opened its conversation with Bob and shows a message."""
    at = BaseStateToken(ident=token, cls=MessagesState)
    async with worker.state_manager.modify_state(at) as root:
        conversation = _conversation(root)
        conversation.active_username = "bob"
        conversation._active_friend_id = 2
        _messages(root).messages = [rows.MessageRow(id=1, body="hello")]


async def _write_every_state(worker: Worker, token: str) -> None:
    """Every state of the tab's tree written, as events over a tab's life write them."""
    at = BaseStateToken(ident=token, cls=rx.State)
    async with worker.state_manager.modify_state(at) as root:
        stack: list[BaseState] = [root]
        while stack:
            state = stack.pop()
            state._was_touched = True
            stack.extend(state.substates.values())


async def _state_keys_in_redis(client: Any, token: str) -> set[str]:
    return {k.decode() async for k in client.scan_iter(match=f"{token}_*")}


def test_connected_tabs_keep_their_state_and_others_expire(redis_ok: None):
    import redis.asyncio as aioredis

    async def scenario() -> None:
        here, other = Worker(), Worker()
        tabs = ReflexTabs(here)
        client = aioredis.from_url(REDIS_URL)
        idle, closed, elsewhere = _token(), _token(), _token()
        task: asyncio.Task[None] | None = None
        try:
            assert await here.tokens.link_token_to_sid(idle, "sid-idle") is None
            assert await here.tokens.link_token_to_sid(closed, "sid-closed") is None
            assert await other.tokens.link_token_to_sid(elsewhere, "sid-elsewhere") is None
            for token in (idle, closed, elsewhere):
                await _open_conversation(here, token)
            # The closed tab's socket goes, as Reflex's on_disconnect does it, and the app
            # renews its keys together one last time.
            await here.tokens.disconnect_token(closed, "sid-closed")
            await keepalive.renew_tab(tabs, closed)
            assert tabs.local_tokens() == [idle]

            idle_keys = await _state_keys_in_redis(client, idle)
            assert {
                f"{idle}_{cls.get_full_name()}" for cls in (ConversationState, MessagesState)
            } <= idle_keys
            record = here.tokens._get_redis_key(idle)

            task = asyncio.create_task(keepalive.watch(tabs, interval=INTERVAL))
            started = time.monotonic()
            gone: dict[str, float] = {}
            # Three expiry periods, looking every 0.1 s: the idle tab's keys never go (its
            # TTL never runs out), while the tabs nobody here renews lose theirs.
            while time.monotonic() - started < 3 * EXPIRY:
                assert await client.exists(*idle_keys, record) == len(idle_keys) + 1
                for token in (closed, elsewhere):
                    if token not in gone and not await _state_keys_in_redis(client, token):
                        gone[token] = time.monotonic() - started
                await asyncio.sleep(0.1)
            assert set(gone) == {closed, elsewhere}, "unrenewed tabs must expire"
            assert all(after <= EXPIRY + 1 for after in gone.values()), gone
            assert not await client.exists(here.tokens._get_redis_key(closed))
            ttls = [await client.pttl(key) for key in (*idle_keys, record)]
            assert min(ttls) > (EXPIRY - 2 * INTERVAL) * 1000, ttls

            # ...and what those keys hold is the open conversation, as another worker reads it.
            reader = Worker()
            root = await reader.state_manager.get_state(
                BaseStateToken(ident=idle, cls=MessagesState)
            )
            await reader.close()
            assert _conversation(root).active_username == "bob"
            assert _conversation(root)._active_friend_id == 2
            assert [m.body for m in _messages(root).messages] == ["hello"]

            # The closed tab comes back to this worker after its state expired: it keeps
            # its token (no socket record stands in the way) and gets a fresh tree, as a new
            # tab; its page's on_load (run by hydrate_and_load on every connect) fills it.
            assert await here.tokens.link_token_to_sid(closed, "sid-back") is None
            fresh = await here.state_manager.get_state(
                BaseStateToken(ident=closed, cls=MessagesState)
            )
            assert _conversation(fresh).active_username == ""
            assert _messages(fresh).messages == []
            assert fresh.is_hydrated is False
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            # Reflex's token manager re-creates a deleted record of its own live socket.
            await here.close()
            await other.close()
            for token in (idle, closed, elsewhere):
                keys = [k async for k in client.scan_iter(match=f"*{token}*")]
                if keys:
                    await client.delete(*keys)
            await client.aclose()

    asyncio.run(scenario())


def test_the_renewal_names_every_key_reflex_wrote(redis_ok: None):
    import redis.asyncio as aioredis

    async def scenario() -> None:
        here, other = Worker(), Worker()
        tabs = ReflexTabs(here)
        client = aioredis.from_url(REDIS_URL)
        token, elsewhere = _token(), _token()
        try:
            assert await here.tokens.link_token_to_sid(token, "sid-1") is None
            assert await other.tokens.link_token_to_sid(elsewhere, "sid-2") is None
            await _write_every_state(here, token)
            await _write_every_state(other, elsewhere)

            # What Reflex wrote for the tab, found by scanning Redis, is exactly what the
            # keep-alive names: a key per state class, and the socket record.
            written = await _state_keys_in_redis(client, token)
            record = here.tokens._get_redis_key(token)
            assert await client.exists(record)
            assert written | {record} == set(tabs.stored_keys(token))
            assert len(written) > 10  # Reflex's own states and Iris's

            # Every one of them is renewed by one round; the other worker's tab is not.
            for key in (*written, record):
                await client.pexpire(key, 500)
            elsewhere_keys = await _state_keys_in_redis(client, elsewhere)
            for key in elsewhere_keys:
                await client.pexpire(key, 500)
            done = await keepalive.renew_local_tabs(tabs)
            assert done is not None
            assert (done.tabs, done.keys, done.renewed, done.trips) == (
                1,
                len(written) + 1,
                len(written) + 1,
                1,
            )
            assert min([await client.pttl(k) for k in (*written, record)]) > 1500
            assert max([await client.pttl(k) for k in elsewhere_keys]) <= 500
        finally:
            await here.close()
            await other.close()
            for t in (token, elsewhere):
                keys = [k async for k in client.scan_iter(match=f"*{t}*")]
                if keys:
                    await client.delete(*keys)
            await client.aclose()

    asyncio.run(scenario())


def test_nothing_is_renewed_without_redis():
    """One worker (memory state): the keep-alive has nothing to renew, and the expiry of
    a tab's state stays Reflex's hour there (nothing would renew a shorter one)."""
    from reflex.istate.manager.memory import StateManagerMemory

    memory_app = SimpleNamespace(state_manager=StateManagerMemory(), event_namespace=None)
    assert asyncio.run(keepalive.renew_local_tabs(ReflexTabs(memory_app))) is None


# Each case imports rxconfig afresh (settings are read once per process).
_READ_EXPIRY = """
import importlib, os, sys
from iris_reflex.settings import get_settings
for case in sys.argv[1:]:
    for name in ("IRIS_REDIS_URL", "IRIS_TAB_STATE_TTL"):
        os.environ.pop(name, None)
    os.environ.update(dict(kv.split("=", 1) for kv in case.split(",") if kv))
    get_settings.cache_clear()
    loaded = sys.modules.get("rxconfig")
    module = importlib.reload(loaded) if loaded else importlib.import_module("rxconfig")
    print("expiry", module.config.redis_token_expiration)
"""


def test_the_expiry_is_short_with_redis_only():
    """Redis mode: 15 minutes, or IRIS_TAB_STATE_TTL; one worker (memory): Reflex's hour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IRIS_REDIS", "IRIS_TAB"))}
    env.pop("REFLEX_REDIS_TOKEN_EXPIRATION", None)
    env.pop("REFLEX_STATE_MANAGER_MODE", None)
    redis = "IRIS_REDIS_URL=redis://127.0.0.1:6379/15"
    out = subprocess.run(
        [sys.executable, "-c", _READ_EXPIRY, redis, f"{redis},IRIS_TAB_STATE_TTL=120", ""],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("expiry ")]
    assert found == ["900", "120", "3600"]
