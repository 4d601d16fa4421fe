"""A change for a tab connected to another worker is applied by that worker.

Why: with several workers a tab's states live in Redis. A worker applying a change to a tab
connected elsewhere takes the tab's Redis lock, loads and unseals each state the change
touches, seals and writes them back, and Reflex forwards the delta through Redis to the
worker that holds the socket. Profiled on two backends at 100 messages/s, that was 12.7 ms of
CPU per message against 4.6 ms in one worker. The worker holding the socket also runs the
tab's own events; when every change to the tab is applied there too, nobody else asks for
the tab's lock, so Reflex's opportunistic lock (``REFLEX_OPLOCK_ENABLED``, turned on in
``rxconfig.py``) keeps the tab's states in that worker's memory between events and writes
them to Redis once per lease instead of once per event, and the delta goes straight to the
socket.

How: each worker subscribes to a channel named after it (Reflex's name for the worker, the
one its socket records carry). A change for a tab whose socket record names another worker
is published there, sealed (``sealing``: whoever can reach Redis can neither read a message
in it nor hand a worker a forged change), and that worker applies it as its own push
(``push.apply_relayed``). When nobody receives it (that worker just died, or is renaming
itself at start-up), the pusher applies it itself through Redis, as before.

Pub/sub keeps nothing, so what could be lost is covered where it would be lost: a worker that
dies after receiving a change left it with every other push it owed, which the survivors
re-read (``live.workers``); a worker whose subscription broke re-reads its own tabs once it
has subscribed again (``on_gap``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import redis.asyncio as redis

from iris_reflex import metrics, sealing
from iris_reflex.live.events import Change
from iris_reflex.live.registry import redis_result
from iris_reflex.settings import get_settings

log = logging.getLogger("iris.live")

LABEL = "iris relay: a change for a tab"  # associated data of every relayed blob
RETRY_SECONDS = 1.0  # after Redis failed, before subscribing again

Apply = Callable[[int, str, Change], Coroutine[Any, Any, None]]


class Relay:
    """Send changes to other workers' tabs, and receive this worker's."""

    def __init__(self, url: str, prefix: str, *, name: str = "iris-relay") -> None:
        self._redis = redis.from_url(url, client_name=name)  # named in Redis's CLIENT LIST
        self._channel = f"{prefix}tab-changes:"
        self._running: set[asyncio.Task[None]] = set()

    def channel(self, worker_id: str) -> str:
        return self._channel + worker_id

    async def send(self, worker_id: str, user_id: int, token: str, change: Change) -> bool:
        """Publish ``change`` for ``token`` to ``worker_id``; False when no worker heard it."""
        blob = sealing.seal({"user_id": user_id, "token": token, "change": change}, label=LABEL)
        receivers = await redis_result(self._redis.publish(self.channel(worker_id), blob))
        return bool(receivers)

    def _received(self, blob: object, apply: Apply) -> None:
        try:
            fields = sealing.unseal(blob, label=LABEL)
            user_id, token, change = fields["user_id"], fields["token"], fields["change"]
            if not (isinstance(user_id, int) and isinstance(token, str)):
                raise sealing.SealError("a relayed change without a user and a tab")
            if not isinstance(change, Change):
                raise sealing.SealError("a relayed change that is not a change")
        except (sealing.SealError, KeyError):
            metrics.RELAY_REFUSED.inc()
            log.warning("refused a relayed change that this deployment did not seal")
            return
        task = asyncio.get_running_loop().create_task(apply(user_id, token, change))
        self._running.add(task)
        metrics.RELAYED_PENDING.set(len(self._running))
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        metrics.RELAYED_PENDING.set(len(self._running))

    async def listen(
        self,
        worker_id: Callable[[], str | None],
        apply: Apply,
        on_gap: Callable[[], Awaitable[object]],
    ) -> None:
        """Receive this worker's changes until cancelled. ``worker_id`` is asked again every
        second (Reflex renames a worker at start-up); ``on_gap`` runs after the subscription
        had to be made again, when changes sent meanwhile may have been missed."""
        subscribed: str | None = None
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        broken = False
        try:
            while True:
                try:
                    me = worker_id()
                    if me != subscribed:
                        if subscribed is not None:
                            await pubsub.unsubscribe(self.channel(subscribed))
                        if me is not None:
                            await pubsub.subscribe(self.channel(me))
                        subscribed = me
                        if broken:
                            broken = False
                            await on_gap()
                    if subscribed is None:
                        await asyncio.sleep(RETRY_SECONDS)
                        continue
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._received(message["data"], apply)
                except asyncio.CancelledError:
                    raise
                except (redis.ConnectionError, redis.TimeoutError, OSError):
                    log.warning("the relay's subscription broke; subscribing again", exc_info=True)
                    await pubsub.aclose()
                    pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                    subscribed, broken = None, True
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            await pubsub.aclose()

    async def close(self) -> None:
        await self._redis.aclose()


@functools.cache
def get_relay() -> Relay | None:
    """This process's relay; None with one worker (no Redis: every tab is here)."""
    settings = get_settings()
    if not settings.redis_url:
        return None
    return Relay(settings.redis_url, settings.redis_prefix)
