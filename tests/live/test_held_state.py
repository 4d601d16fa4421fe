"""Tab states a worker holds in memory (Reflex's opportunistic lock, on with several
workers), with Reflex's own Redis state manager on a real Redis.

- While a worker holds a tab, its stored copy lags behind what the tab shows; a change that
  takes something away (``ReflexTabs.flush``) has the copy written at once, not when the
  hold ends.
- An event that runs longer than the tab's Redis lock: without the worker renewing the locks
  it holds, the write-back is refused and what the tab gained is lost (Reflex's behaviour,
  shown here so the test proves the need), and the app is told which tab to re-read; with
  the renewal (``keepalive``), it is written.
- A hold longer than the lock's expiry (``ReflexTabs.hold_states``) lasts while the worker
  renews its locks, and is written back at its end.
- Without Redis nothing is held, so there is nothing to renew or write.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from reflex.istate.manager.redis import StateManagerRedis
from reflex.istate.manager.token import BaseStateToken
from reflex.state import BaseState

import iris_reflex.iris_reflex  # noqa: F401  (registers every state on rx.State)
from iris_reflex.live import keepalive
from iris_reflex.state import rows
from iris_reflex.state.conversation import MessagesState
from iris_reflex.state.tabs import ReflexTabs
from tests.redis_server import REDIS_URL, require_redis

DEADLINE = 10.0


@pytest.fixture
def redis_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    require_redis()
    monkeypatch.setenv("REFLEX_OPLOCK_ENABLED", "true")  # as rxconfig.py sets it with Redis


async def _holding_app(*, lock_ms: int, hold_ms: int) -> Any:
    """A worker's app as ``ReflexTabs`` reads it: Reflex's Redis state manager with the
    opportunistic lock, listening for lock notifications (as it does once it has served)."""
    import redis.asyncio as aioredis

    manager = StateManagerRedis(
        redis=aioredis.from_url(REDIS_URL),
        token_expiration=60,
        lock_expiration=lock_ms,
        lock_warning_threshold=lock_ms // 2,
        oplock_hold_time_ms=hold_ms,
    )
    assert manager._oplock_enabled
    await manager._ensure_lock_task_subscribed(timeout=DEADLINE)
    return SimpleNamespace(state_manager=manager, event_namespace=None)


def _messages(root: BaseState) -> Any:
    return root.get_substate(MessagesState.get_full_name().split(".")[1:])


async def _show(app: Any, token: str, *bodies: str) -> None:
    """One event: the tab's page shows ``bodies``."""
    async with app.state_manager.modify_state(BaseStateToken(ident=token, cls=MessagesState)) as r:
        _messages(r).messages = [rows.MessageRow(id=i, body=b) for i, b in enumerate(bodies)]


async def _stored_bodies(reader: StateManagerRedis, token: str) -> list[str]:
    """What Redis holds for the tab, read as another worker would (no lock needed)."""
    root = await reader.get_state(BaseStateToken(ident=token, cls=MessagesState))
    return [m.body for m in _messages(root).messages]


async def _until(what: str, check: Any) -> None:
    end = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@dataclass
class RenewingWorker:
    """One worker holding one tab (2 s locks), and what the tests look at."""

    app: Any
    tabs: ReflexTabs
    token: str
    lock: bytes  # the tab's Redis lock key
    reader: StateManagerRedis  # another worker's view of Redis (reads need no lock)
    refused: list[str]  # tabs whose write-back was refused, as the app is told


@contextlib.asynccontextmanager
async def _renewing_worker(*, renewed: bool) -> AsyncIterator[RenewingWorker]:
    """A worker with 2 s locks and 0.4 s holds, renewing the locks it holds every 0.2 s (as
    the app's 10 s lock, looked at every second, is renewed with 5 s to spare: a loaded CI
    machine still renews it), or, without ``renewed``, Reflex alone."""
    import redis.asyncio as aioredis

    app = await _holding_app(lock_ms=2000, hold_ms=400)
    reader = StateManagerRedis(redis=aioredis.from_url(REDIS_URL), token_expiration=60)
    tabs, token = ReflexTabs(app), f"held{secrets.token_hex(8)}"
    lock = app.state_manager._lock_key(BaseStateToken(ident=token, cls=MessagesState))
    worker = RenewingWorker(app, tabs, token, lock, reader, refused=[])
    tabs.on_refused_write_back(worker.refused.append)
    renewing = (
        asyncio.create_task(keepalive.watch_held_locks(tabs, interval=0.2)) if renewed else None
    )
    try:
        yield worker
    finally:
        if renewing is not None:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
        await app.state_manager.close()
        await reader.close()


def test_a_flush_writes_the_held_copy_at_once(redis_ok: None):
    import redis.asyncio as aioredis

    async def scenario() -> None:
        # A hold far longer than the test: only the flush can write the copy.
        app = await _holding_app(lock_ms=60_000, hold_ms=50_000)
        reader = StateManagerRedis(redis=aioredis.from_url(REDIS_URL), token_expiration=60)
        tabs, token = ReflexTabs(app), f"held{secrets.token_hex(8)}"
        try:
            await _show(app, token, "first")
            assert token in app.state_manager._local_leases  # held by this worker
            await _show(app, token, "second")  # in memory only
            assert await _stored_bodies(reader, token) == []
            assert app.state_manager._local_leases[token]  # still held

            # Say "second" expired: the tab re-reads without it, and the copy follows.
            await _show(app, token, "first")
            tabs.flush(token)

            async def written() -> bool:
                return await _stored_bodies(reader, token) == ["first"]

            await _until("the held copy to be written", written)
            lock = app.state_manager._lock_key(BaseStateToken(ident=token, cls=MessagesState))
            assert not await reader.redis.exists(lock)  # and the tab is free for any worker
        finally:
            await app.state_manager.close()
            await reader.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("renewed", "flushed"),
    [(False, False), (False, True), (True, False)],
    ids=["reflex-alone", "reflex-alone-flushed-meanwhile", "locks-renewed"],
)
def test_an_event_longer_than_the_lock_keeps_what_it_showed_when_locks_are_renewed(
    redis_ok: None, renewed: bool, flushed: bool
):
    async def scenario() -> list[str]:
        async with _renewing_worker(renewed=renewed) as w:
            await _show(w.app, w.token, "first")
            # An event on the held tab that takes 2.5 times the lock's expiry (a worker
            # behind on its queue): the hold ends meanwhile, and its write-back waits for
            # the event.
            token_at = BaseStateToken(ident=w.token, cls=MessagesState)
            async with w.app.state_manager.modify_state(token_at) as root:
                _messages(root).messages = [rows.MessageRow(id=1, body="kept")]
                await asyncio.sleep(5.0)
                assert bool(await w.reader.redis.exists(w.lock)) is renewed
                if flushed:
                    # The hold is ended again while its write-back waits (a change that
                    # took something away): Reflex then reports the refusal only as an
                    # exception of the write-back task that nobody retrieved.
                    w.tabs.flush(w.token)

            async def settled() -> bool:
                # Written (the renewal kept the lock), or reported refused with the tab's
                # token (the app then re-reads that tab).
                if renewed:
                    return await _stored_bodies(w.reader, w.token) == ["kept"]
                gc.collect()  # a task's unretrieved exception is reported when it is freed
                return w.refused == [w.token]

            await _until("the write-back to be done or refused", settled)
            assert w.refused == ([] if renewed else [w.token])
            return await _stored_bodies(w.reader, w.token)

    stored = asyncio.run(scenario())
    # Reflex alone refuses the write (its lock expired): the copy stays as it was before.
    assert stored == (["kept"] if renewed else [])


def test_nothing_is_held_without_redis():
    from reflex.istate.manager.memory import StateManagerMemory

    tabs = ReflexTabs(SimpleNamespace(state_manager=StateManagerMemory(), event_namespace=None))
    assert tabs.held_locks() is None
    assert not tabs.hold_states(60)
    assert asyncio.run(keepalive.extend_held_locks(tabs)) is None
    tabs.flush("any-token")  # nothing to write, and no error


@pytest.mark.parametrize("renewed", [True, False], ids=["locks-renewed", "reflex-alone"])
def test_a_hold_longer_than_the_lock_lasts_while_the_locks_are_renewed(
    redis_ok: None, renewed: bool
):
    """``ReflexTabs.hold_states`` lets a hold outlast the lock's expiry (Reflex refuses that
    in its settings): the worker's renewals keep the lock, the states stay in memory the
    whole hold, and the write-back at its end is accepted. Without the renewals the lock
    expires under the hold and the write-back is refused (why the app holds this long only
    where it renews)."""

    async def scenario() -> None:
        async with _renewing_worker(renewed=renewed) as w:
            assert w.tabs.hold_states(4.0)
            assert w.app.state_manager.oplock_hold_time_ms == 4000
            await _show(w.app, w.token, "first")
            held_since = time.monotonic()

            async def past_the_lock_expiry() -> bool:
                return time.monotonic() - held_since > 3.0

            await _until("the lock's expiry to pass", past_the_lock_expiry)
            # Still held in memory, not written back yet; the lock is there only if renewed.
            assert await _stored_bodies(w.reader, w.token) == []
            assert bool(await w.reader.redis.exists(w.lock)) is renewed

            async def hold_over() -> bool:
                gc.collect()  # a task's unretrieved exception is reported when it is freed
                if renewed:
                    return await _stored_bodies(w.reader, w.token) == ["first"]
                return w.refused == [w.token]

            await _until("the hold to end", hold_over)
            assert w.refused == ([] if renewed else [w.token])
            assert await _stored_bodies(w.reader, w.token) == (["first"] if renewed else [])
            assert not await w.reader.redis.exists(w.lock)  # free for any worker

    asyncio.run(scenario())


def test_reflex_own_hold_setting_wins(redis_ok: None, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REFLEX_OPLOCK_HOLD_TIME_MS", "300")

    async def scenario() -> None:
        app = await _holding_app(lock_ms=1000, hold_ms=300)
        try:
            assert not ReflexTabs(app).hold_states(60)
            assert app.state_manager.oplock_hold_time_ms == 300
        finally:
            await app.state_manager.close()

    asyncio.run(scenario())


def test_a_held_lock_is_renewed_only_once_it_is_due(redis_ok: None):
    """Each renewal is a keyspace notification every worker parses: a lock with most of its
    expiry left is counted and left alone, one past ``LOCK_RENEW_BELOW`` is renewed, and one
    that is gone stays gone."""
    import redis.asyncio as aioredis

    async def scenario() -> None:
        redis = aioredis.from_url(REDIS_URL)
        fresh, due, gone = (f"held{secrets.token_hex(8)}_lock".encode() for _ in range(3))
        locks = [(fresh, b"a"), (due, b"b"), (gone, b"c")]
        try:
            await redis.set(fresh, b"a", px=9_000)
            await redis.set(due, b"b", px=3_000)
            assert await keepalive.extend_locks(redis, locks, 10_000) == 2
            assert 8_000 < await redis.pttl(fresh) <= 9_000  # untouched
            assert 9_000 < await redis.pttl(due) <= 10_000  # renewed to the full expiry
            assert await redis.get(due) == b"b"  # the same lock, still its holder's
            assert not await redis.exists(gone)
        finally:
            await redis.delete(fresh, due)
            await redis.aclose()

    asyncio.run(scenario())


def test_a_worker_renews_and_lists_only_the_locks_that_are_still_its_own(redis_ok: None):
    """Each look lists this worker's held locks under its name (for the survivors to release
    if it dies). A lock that expired and was taken by another worker since is counted but
    neither renewed nor listed, and the list is written afresh: a lock no longer held leaves
    it, and a worker holding nothing keeps an empty one."""
    import redis.asyncio as aioredis

    async def scenario() -> None:
        redis = aioredis.from_url(REDIS_URL)
        worker = f"worker-{secrets.token_hex(4)}"
        listed = keepalive.held_locks_key(worker)
        mine, taken = (f"held{secrets.token_hex(8)}_lock".encode() for _ in range(2))
        try:
            await redis.set(mine, b"mine-1", px=3_000)
            await redis.set(taken, b"someone-else", px=3_000)
            locks = [(mine, b"mine-1"), (taken, b"mine-2")]
            assert await keepalive.extend_locks(redis, locks, 10_000, worker_id=worker) == 2
            assert await redis.hgetall(listed) == {mine: b"mine-1"}
            assert 9_000 < await redis.pttl(mine) <= 10_000  # due, and its own: renewed
            assert await redis.pttl(taken) <= 3_000  # another worker's: left alone
            assert 0 < await redis.pttl(listed) <= 10_000  # the list goes with the locks

            await keepalive.extend_locks(redis, [], 10_000, worker_id=worker)
            assert not await redis.exists(listed)  # holds nothing now: nothing listed
        finally:
            await redis.delete(mine, taken, listed)
            await redis.aclose()

    asyncio.run(scenario())


# A worker in its own process that holds a tab's states (a lease on its Redis lock), lists
# its locks as the app's renewal does, says so, and waits to be killed.
HOLDING_WORKER = """
import asyncio, sys
import redis.asyncio as aioredis
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from reflex.istate.manager.redis import StateManagerRedis
from reflex.istate.manager.token import BaseStateToken
import reflex as rx
from iris_reflex.live import keepalive
from iris_reflex.state.tabs import ReflexTabs

async def main():
    manager = StateManagerRedis(
        redis=aioredis.from_url(sys.argv[1]), token_expiration=60,
        lock_expiration=30_000, lock_warning_threshold=20_000, oplock_hold_time_ms=25_000,
    )
    await manager._ensure_lock_task_subscribed(timeout=10)
    async with manager.modify_state(BaseStateToken(ident=sys.argv[2], cls=rx.State)):
        pass
    held = ReflexTabs(SimpleNamespace(state_manager=manager, event_namespace=None)).held_locks()
    await keepalive.extend_locks(held.redis, held.locks, held.expiry_ms, worker_id=sys.argv[3])
    print("held", held.locks[0][0].decode(), held.locks[0][1].decode(), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_the_locks_of_a_killed_worker_are_released_and_its_tab_is_free_at_once(redis_ok: None):
    """A worker killed while it held a tab leaves the tab's Redis lock behind, which another
    worker would wait out (here 30 s; the app's is 10 s after its last renewal). The
    survivors release the locks it listed (``ReflexTabs.release_locks_of``), and another
    worker then takes the tab and writes it."""
    import signal
    import subprocess
    import sys

    import redis.asyncio as aioredis

    from iris_reflex.settings import PROJECT_ROOT

    token, dead = f"held{secrets.token_hex(8)}", f"worker-{secrets.token_hex(4)}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDING_WORKER, REDIS_URL, token, dead],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        assert holder.stdout is not None
        said, lock_key, lock_id = holder.stdout.readline().split()
        assert said == "held"
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)

        async def scenario() -> None:
            survivor = await _holding_app(lock_ms=10_000, hold_ms=50)
            tabs = ReflexTabs(survivor)
            try:
                redis = survivor.state_manager.redis
                # The lease's own lock id, read off Reflex's task: the one held in Redis.
                assert await redis.get(lock_key) == lock_id.encode()
                assert await redis.pttl(lock_key) > 20_000  # would be waited out
                assert await tabs.release_locks_of(dead) == 1
                assert not await redis.exists(lock_key)
                assert not await redis.exists(keepalive.held_locks_key(dead))
                assert await tabs.release_locks_of(dead) == 0  # once

                await _show(survivor, token, "after")  # the tab is this worker's now
                tabs.flush(token)
                reader = StateManagerRedis(redis=aioredis.from_url(REDIS_URL), token_expiration=60)
                try:

                    async def written() -> bool:
                        return await _stored_bodies(reader, token) == ["after"]

                    await _until("the survivor's write-back", written)
                finally:
                    await reader.close()
            finally:
                await survivor.state_manager.close()

        asyncio.run(scenario())
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


def test_a_released_lock_since_taken_by_another_worker_is_left_alone(redis_ok: None):
    import redis.asyncio as aioredis

    async def scenario() -> None:
        redis = aioredis.from_url(REDIS_URL)
        dead = f"worker-{secrets.token_hex(4)}"
        still, retaken = (f"held{secrets.token_hex(8)}_lock".encode() for _ in range(2))
        try:
            await redis.set(still, b"dead-1", px=10_000)
            await redis.set(retaken, b"dead-2", px=10_000)
            locks = [(still, b"dead-1"), (retaken, b"dead-2")]
            await keepalive.extend_locks(redis, locks, 10_000, worker_id=dead)
            # Its lock expired meanwhile and a live worker took it.
            await redis.set(retaken, b"alive-1", px=10_000)
            assert await keepalive.release_locks_of(redis, dead) == 1
            assert not await redis.exists(still)
            assert await redis.get(retaken) == b"alive-1"
        finally:
            await redis.delete(still, retaken, keepalive.held_locks_key(dead))
            await redis.aclose()

    asyncio.run(scenario())
