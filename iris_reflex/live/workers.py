"""Which backend workers are alive, and what the others do when one dies.

Why it is built this way: with several workers (``IRIS_REDIS_URL``) a worker can die outright
(``kill -9``, the OOM killer, a lost host) with no chance to clean up. What it leaves behind:

- Reflex's records that its tabs' sockets are connected to it (in Redis, until the tab-state
  TTL, ``IRIS_TAB_STATE_TTL``, passes). A tab that reconnects to another worker with its own
  client token is then taken for a duplicate tab: Reflex hands it a *new* token and an
  empty state, and the page loses what it showed (its open conversation). Pushes and
  presence also go on counting those tabs as connected.
- Fan-outs it was running: a message it had stored may not have been pushed yet to the
  friend's tab on another worker. Nothing would show it there until the next push.

So each worker keeps one Redis subscription open on a channel named after it, and joins a
roll of workers. Redis drops the subscription the moment the process dies, so
``PUBSUB NUMSUB`` tells at once, without waiting for a heartbeat to time out, whether a worker
on the roll still lives. The other workers then
1. let a tab that reconnects keep its token when the socket record names a dead worker
   (``state.tabs`` asks ``is_dead`` before Reflex decides it is a duplicate), so the tab
   rehydrates its own state;
2. each re-read every tab connected to them (``push.resync_local_tabs``), which shows anything
   a lost fan-out never pushed: every message the dead worker stored is in the database, and
   a re-read after its death reads it;
3. one of them (whoever claims it first) drops the dead worker's socket records.

Before all that, they release the Reflex locks it held on tabs whose states it kept in memory
(each worker lists them every second, ``keepalive.extend_locks``): its tabs, reconnecting to
the others, would otherwise wait out those locks' expiry (10 s after its last renewal), and
with a long hold (``IRIS_TAB_HOLD_SECONDS``) those are most of its tabs.

A worker that is not on the roll (still starting, or another version) counts as alive: a
token is taken over only from a worker known to be gone.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as redis

from iris_reflex.live import presence, push
from iris_reflex.live.registry import redis_result
from iris_reflex.settings import get_settings

log = logging.getLogger("iris.workers")

TICK_SECONDS = 1.0
FORGET_AFTER_SECONDS = 600  # a dead worker leaves the roll after this long
CLAIM_SECONDS = 3600


class WorkerRoll:
    """The workers sharing one Redis, and the subscription that shows this one lives."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis = redis.from_url(url, decode_responses=True)
        self._roll = f"{prefix}workers"
        self._channel = f"{prefix}worker:"
        self._claims = f"{prefix}worker-gone:"
        self._pubsub: redis.client.PubSub | None = None
        self._me: str | None = None
        self._handled: set[str] = set()

    async def join(self, worker_id: str) -> None:
        """Be on the roll as ``worker_id`` (subscribed first, so it never looks dead)."""
        if self._me != worker_id or self._pubsub is None:
            if self._pubsub is not None:
                await self._pubsub.aclose()
            if self._me is not None and self._me != worker_id:
                # Reflex renamed this worker (it does at start-up): the old name never died.
                await redis_result(self._redis.zrem(self._roll, self._me))
            self._pubsub = self._redis.pubsub()
            await self._pubsub.subscribe(self._channel + worker_id)
            self._me = worker_id
        else:
            # A subscription lost with its connection (Redis restarted) is made again. The
            # PONGs come back on the subscription: read them, or Redis's output buffer for
            # this client would grow until Redis cut it (and the worker looked dead).
            try:
                await self._pubsub.ping()
                while await self._pubsub.get_message(timeout=0.0) is not None:
                    pass
            except (redis.ConnectionError, redis.TimeoutError):
                self._pubsub = None
                await self.join(worker_id)
                return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self._roll, {worker_id: time.time()})
            pipe.expire(self._roll, FORGET_AFTER_SECONDS)  # a roll nobody keeps goes away
            await pipe.execute()

    async def is_dead(self, worker_id: str) -> bool:
        """True only for a worker on the roll whose subscription is gone (it has exited)."""
        if worker_id == self._me:
            return False
        if await redis_result(self._redis.zscore(self._roll, worker_id)) is None:
            return False
        counts = await self._redis.pubsub_numsub(self._channel + worker_id)
        return not any(count for _channel, count in counts)

    async def newly_dead(self) -> list[str]:
        """Workers found dead since the last call (each reported once per worker)."""
        await redis_result(
            self._redis.zremrangebyscore(self._roll, "-inf", time.time() - FORGET_AFTER_SECONDS)
        )
        found = []
        for worker_id in await redis_result(self._redis.zrange(self._roll, 0, -1)):
            if worker_id not in self._handled and await self.is_dead(worker_id):
                self._handled.add(worker_id)
                found.append(worker_id)
        return found

    async def claim(self, worker_id: str) -> bool:
        """Whether this worker is the one to clean up after ``worker_id``."""
        return bool(
            await redis_result(
                self._redis.set(self._claims + worker_id, "1", nx=True, ex=CLAIM_SECONDS)
            )
        )

    async def close(self) -> None:
        if self._pubsub is not None:
            await self._pubsub.aclose()
        await self._redis.aclose()


_roll: WorkerRoll | None = None


def get_roll() -> WorkerRoll | None:
    """This process's roll; None with one worker (no Redis)."""
    global _roll
    settings = get_settings()
    if _roll is None and settings.redis_url:
        _roll = WorkerRoll(settings.redis_url, settings.redis_prefix)
    return _roll


async def is_dead(worker_id: str) -> bool:
    """Whether ``worker_id`` is known to have exited (never True without Redis)."""
    roll = get_roll()
    return roll is not None and await roll.is_dead(worker_id)


async def _tick(roll: WorkerRoll) -> None:
    worker_id = push.worker_id()
    if worker_id is None:
        return
    await roll.join(worker_id)
    for dead in await roll.newly_dead():
        # First, so that its tabs (reconnecting here) and the re-reads below need not wait
        # for its locks to expire; every survivor tries, the first one releases.
        released = await push.release_locks_of(dead)
        resynced = await push.resync_local_tabs()
        forgotten = await push.forget_worker(dead) if await roll.claim(dead) else 0
        await presence.sweep()  # its tabs' people are offline unless they have others
        log.warning(
            "backend worker %s… is gone: released %d of its tab locks, re-read %d tabs here, "
            "dropped %d of its socket records",
            dead[:8],
            released,
            resynced,
            forgotten,
        )


async def watch() -> None:
    """Lifespan task: keep this worker on the roll and notice the ones that die."""
    roll = get_roll()
    if roll is None:
        return
    try:
        while True:
            try:
                await _tick(roll)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - watching must never take the worker down
                log.exception("worker roll tick failed")
            await asyncio.sleep(TICK_SECONDS)
    finally:
        await roll.close()
