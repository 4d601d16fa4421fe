"""Keeping the stored state of this worker's connected tabs alive, so it can expire soon.

Why: with several workers (``IRIS_REDIS_URL``) Reflex keeps each state of a tab under its
own Redis key with a TTL (``redis_token_expiration``), set only when an event writes *that*
state. The page sends no periodic events, so a tab that only sits there (read, or typed
without sending) would lose its open conversation and page once the TTL passed, while its
composer's key, written as it types, stayed. A short TTL is wanted all the same: a closed
tab's state (sealed, but the router's headers and the client address are not) should not
linger for an hour.

So every ``expiry / 3`` seconds each worker renews (``EXPIRE``, in batches of 2,000 keys, one
round trip each) every Redis key Reflex keeps for each tab whose websocket is connected *to
this worker*: one key per state class of the app, and the token manager's socket record. A
tab connected to another worker is that worker's to renew; a closed tab is nobody's, and all
of its keys go within the expiry of its last renewal or write. Each live tab thus costs one
``EXPIRE`` per state class and one for its record, once per third of the TTL.

This module knows tokens and key names, not Reflex: the app hands ``watch`` a
``StoredTabs`` (``state.tabs.ReflexTabs``) that names them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from iris_reflex.live.registry import redis_result
from iris_reflex.settings import get_settings

log = logging.getLogger("iris.keepalive")

# Keys per round trip: big enough that 1,000 tabs take a handful of trips, small enough that
# one trip never holds Redis (or this worker's event loop) for long.
BATCH_KEYS = 2000
# One round trip renews a batch: the script PEXPIREs each of its keys and counts the ones
# that existed (a key that is gone stays gone). A pipeline of EXPIRE commands cost the worker
# 3.7 times the CPU (redis-py builds and parses each pipelined command in Python): 352
# against 95 ms per 1,000 tabs, bench/keepalive_cost.py.
_RENEW = """
local renewed = 0
for _, key in ipairs(KEYS) do
    renewed = renewed + redis.call('PEXPIRE', key, ARGV[1])
end
return renewed
"""
# Until the app's state manager is up, look again this often.
WAIT_SECONDS = 1.0


class StoredTabs(Protocol):
    """Where this worker's tabs keep their state (installed by the app)."""

    def stored_state(self) -> tuple[Any, int] | None:
        """The Redis client tab state lives in and its expiry in seconds; None when tab
        state is not in Redis (one worker: memory or disk)."""
        ...

    def local_tokens(self) -> list[str]:
        """Tokens of the tabs whose websocket is connected to this worker now."""
        ...

    def stored_keys(self, token: str) -> list[str]:
        """Every Redis key Reflex may keep for ``token`` (its states, its socket record)."""
        ...

    def held_locks(self) -> HeldLocks | None:
        """The locks of the tabs whose states this worker holds in memory; None when no
        state is held here (one worker, or the lock is not opportunistic)."""
        ...


@dataclasses.dataclass(frozen=True)
class HeldLocks:
    """The Reflex locks this worker holds for tabs whose states it keeps in memory."""

    redis: Any  # Reflex's Redis client (the locks live in its database)
    locks: list[tuple[bytes, bytes]]  # (lock key, this worker's lock id)
    expiry_ms: int  # Reflex's lock expiry
    worker_id: str | None  # this worker's name on the roll; None: not listed (tests)


@dataclasses.dataclass(frozen=True)
class Renewal:
    """What one round did: tabs, keys named, keys that existed (renewed), round trips."""

    tabs: int
    keys: int
    renewed: int
    trips: int
    seconds: float


K = TypeVar("K", str, bytes)
T = TypeVar("T")


def _batches(keys: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for key in keys:
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def renew_keys(redis: Any, keys: Iterable[str], seconds: int) -> tuple[int, int, int]:
    """``EXPIRE`` every key for ``seconds``, ``BATCH_KEYS`` to a round trip; returns (keys
    named, keys that existed, round trips). A missing key stays missing."""
    return await _renew(redis, keys, seconds * 1000)


async def _renew(redis: Any, keys: Iterable[K], ms: int) -> tuple[int, int, int]:
    named = renewed = trips = 0
    script = redis.register_script(_RENEW)
    for batch in _batches(keys, BATCH_KEYS):
        renewed += int(await script(keys=batch, args=[ms]))
        named += len(batch)
        trips += 1
    return named, renewed, trips


async def renew_local_tabs(tabs: StoredTabs) -> Renewal | None:
    """One round: renew the keys of every tab connected to this worker. None when tab
    state is not kept in Redis."""
    stored = tabs.stored_state()
    if stored is None:
        return None
    redis, seconds = stored
    started = time.perf_counter()
    tokens = tabs.local_tokens()
    keys = (key for token in tokens for key in tabs.stored_keys(token))
    named, renewed, trips = await renew_keys(redis, keys, seconds)
    return Renewal(len(tokens), named, renewed, trips, time.perf_counter() - started)


async def renew_tab(tabs: StoredTabs, token: str) -> None:
    """Renew one tab's keys together (a tab that just closed: all of them then expire at
    the same moment, so a tab coming back never finds half of its state)."""
    try:
        stored = tabs.stored_state()
        if stored is not None:
            redis, seconds = stored
            await renew_keys(redis, tabs.stored_keys(token), seconds)
    except Exception:  # noqa: BLE001 - at worst its keys expire a little apart
        log.warning("could not renew the stored state of closed tab %s…", token[:8])


def interval_for(expiry_seconds: int) -> float:
    """A third of the expiry: a key is renewed twice before it could expire, so one
    late or failed round (a slow Redis, a busy loop) loses nothing."""
    return max(expiry_seconds / 3, 0.1)


async def _every(
    step: Callable[[], Awaitable[float | None]], interval: float | None, failed: str
) -> None:
    """Run ``step`` until cancelled: ``interval`` seconds apart, or as long as the step
    asks (``WAIT_SECONDS`` while it has nothing to do yet). A failed round is logged and
    retried; it never takes the worker down."""
    while True:
        wait = WAIT_SECONDS
        try:
            asked = await step()
            if asked is not None:
                wait = asked
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a failed round is retried
            log.exception(failed)
        await asyncio.sleep(wait if interval is None else interval)


async def watch(tabs: StoredTabs, *, interval: float | None = None) -> None:
    """Lifespan task (several workers only): renew this worker's tabs every ``interval``
    seconds (default: a third of the expiry), until cancelled."""
    if not get_settings().redis_url and interval is None:
        return

    async def renew() -> float | None:
        stored = tabs.stored_state()
        if stored is None:
            return None
        done = await renew_local_tabs(tabs)
        if done is not None:
            log.debug(
                "renewed %d of %d keys of %d tabs in %d trips, %.1f ms",
                done.renewed,
                done.keys,
                done.tabs,
                done.trips,
                done.seconds * 1000,
            )
        return interval_for(stored[1])

    await _every(renew, interval, "renewing the stored state of this worker's tabs failed")


# Looks at each held lock within its expiry: a worker whose event loop runs seconds behind
# (overloaded) still renews in time.
LOCK_RENEWALS = 10
# A held lock is renewed once less than this share of its expiry is left, not at every look
# (every 4 to 5 s at Reflex's 10 s expiry, so a look that comes late still has 5 s, where
# renewing at every look left 9): each PEXPIRE is a keyspace notification that Reflex's lock
# listener in every worker receives and parses, so renewing at every look sent each worker
# one message per held tab of the deployment each second (1,000 a second with 1,000 tabs
# held), now about a quarter of that.
LOCK_RENEW_BELOW = 0.6
# One round trip per batch: count the locks still there; of those still this worker's (the
# lock id it took them with), renew the due ones and list them under this worker's name, so
# that if it dies the survivors can release them (``release_locks_of``) instead of its tabs
# waiting out the expiry. The list is written afresh at each look (ARGV[3]: "fresh" in the
# first batch, "more" after it, "none" to keep no list) and expires with the locks.
_EXTEND_LOCKS = """
local listed = KEYS[1]
local mode = ARGV[3]
if mode == 'fresh' then redis.call('DEL', listed) end
local held = 0
for i = 2, #KEYS do
    local key = KEYS[i]
    local current = redis.call('GET', key)
    if current then
        held = held + 1
        -- An empty id: the holder's id is not known; whatever holds the lock is taken for it.
        if ARGV[i + 2] == '' or current == ARGV[i + 2] then
            local left = redis.call('PTTL', key)
            if left >= 0 and left < tonumber(ARGV[2]) then
                redis.call('PEXPIRE', key, ARGV[1])
            end
            if mode ~= 'none' then redis.call('HSET', listed, key, current) end
        end
    end
end
if mode ~= 'none' then redis.call('PEXPIRE', listed, ARGV[1]) end
return held
"""
# Release every lock a dead worker listed that is still its own (a lock that expired and
# was taken by another worker since is left alone); the list goes too.
_RELEASE_LOCKS = """
local listed = redis.call('HGETALL', KEYS[1])
local released = 0
for i = 1, #listed, 2 do
    if redis.call('GET', listed[i]) == listed[i + 1] then
        released = released + redis.call('DEL', listed[i])
    end
end
redis.call('DEL', KEYS[1])
return released
"""


def held_locks_key(worker_id: str) -> str:
    """Where ``worker_id`` lists the tab locks it holds (in Reflex's Redis database; the
    name must not end in ``_lock``, which Reflex's lock listener would take for a lock)."""
    return f"{get_settings().redis_prefix}held-locks:{worker_id}"


async def extend_locks(
    redis: Any,
    locks: Iterable[tuple[bytes, bytes]],
    expiry_ms: int,
    *,
    worker_id: str | None = None,
) -> int:
    """Renew to ``expiry_ms`` each of these locks that is still held with its lock id and
    has less than ``LOCK_RENEW_BELOW`` of it left, and list them as ``worker_id``'s (when
    given); ``BATCH_KEYS // 2`` locks to a round trip (each brings its key and its id).
    Returns how many of the locks are still there."""
    script = redis.register_script(_EXTEND_LOCKS)
    due = int(expiry_ms * LOCK_RENEW_BELOW)
    listed = held_locks_key(worker_id) if worker_id is not None else "-"
    mode = "fresh" if worker_id is not None else "none"
    held = 0
    for batch in _batches(locks, BATCH_KEYS // 2):
        keys = [listed, *(key for key, _ in batch)]
        held += int(await script(keys=keys, args=[expiry_ms, due, mode, *(i for _, i in batch)]))
        mode = "more" if mode == "fresh" else mode
    if mode == "fresh":  # nothing held: an empty list
        await redis_result(redis.delete(listed))
    return held


async def release_locks_of(redis: Any, worker_id: str) -> int:
    """Release the tab locks a dead worker still held (those it listed at its last look);
    returns how many. Its tabs are then free at once, where they waited out the lock's
    expiry (10 s after its last renewal). One round trip."""
    script = redis.register_script(_RELEASE_LOCKS)
    return int(await script(keys=[held_locks_key(worker_id)]))


async def extend_held_locks(tabs: StoredTabs) -> int | None:
    """Renew the lock of every tab whose states this worker holds in memory once it is due,
    and list them under its name; returns how many are still there (None when no state can
    be held here).

    Why: Reflex's opportunistic lock keeps a tab's states in the memory of the worker using
    them for ``oplock_hold_time`` (5 s by Reflex's default), then writes them back under the
    tab's Redis lock (10 s). The write waits its turn behind the tab's queued events; on a
    worker behind by more than the 5 s left, the lock expired first, the write was refused,
    and what the tab's states had gained in memory was dropped, so its next event started
    from the older stored copy (``LockExpiredError`` in the log, 33 times in one overloaded
    20 s run of ``bench.load_tabs`` on two backends). A live worker renews the locks it
    holds; a dead one cannot, and the survivors release what it listed (``workers``)."""
    held = tabs.held_locks()
    if held is None:
        return None
    return await extend_locks(held.redis, held.locks, held.expiry_ms, worker_id=held.worker_id)


async def watch_held_locks(tabs: StoredTabs, *, interval: float | None = None) -> None:
    """Lifespan task (several workers only): look at the locks of the states this worker
    holds every ``interval`` seconds (default: a tenth of the lock's expiry), renew those
    that are due and list them. An idle worker that held nothing at its last look makes no
    round trip."""
    if not get_settings().redis_url and interval is None:
        return
    listed = True  # a list from an earlier life of this name is emptied at the first look

    async def extend() -> float | None:
        nonlocal listed
        held = tabs.held_locks()
        if held is None:
            return None
        if held.locks or listed:
            await extend_locks(held.redis, held.locks, held.expiry_ms, worker_id=held.worker_id)
            listed = bool(held.locks)
        return held.expiry_ms / 1000 / LOCK_RENEWALS

    await _every(extend, interval, "renewing the locks this worker holds failed")
