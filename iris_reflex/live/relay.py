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

A message's fan-out hands its changes over in the same Redis call that looks its tabs up
(``send_to_users``): the registry names the worker each tab registered on, and a Lua script
publishes to those workers and returns the tabs left to reach from here (this worker's, and
any whose worker nobody heard). Profiled on two backends, the lookup and the publish were
two round trips per event, and 12.7 % of the backends' samples. Fan-outs that come while
a call is under way wait and go together in the next one: at 250 messages/s with 1,000 tabs
a worker had hundreds under way at once, each on a Redis connection of its own (727 were
open) and each paying redis-py's cost per command (the calls were 11 % of the backends'
samples). The change is sealed once per user, with the user; the tab's token travels
beside it, unsealed: a token paired with another user's change is refused where it is
applied, since a tab takes changes only for the user it is signed in as (``state.tabs``).

Pub/sub keeps nothing, so what could be lost is covered where it would be lost: a worker that
dies after receiving a change left it with every other push it owed, which the survivors
re-read (``live.workers``); a worker whose subscription broke re-reads its own tabs once it
has subscribed again (``on_gap``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import redis.asyncio as redis

from iris_reflex import metrics, sealing
from iris_reflex.live.events import Change
from iris_reflex.live.registry import redis_result
from iris_reflex.settings import get_settings

log = logging.getLogger("iris.live")

LABEL = "iris relay: a change for a user's tab"  # associated data of every relayed blob
RETRY_SECONDS = 1.0  # after Redis failed, before subscribing again
MAX_TOKEN_BYTES = 256  # a Reflex client token is a UUID; anything longer is not one

# KEYS[i]: user i's registry hash (token -> the worker it registered on). ARGV[1]: the
# channel prefix; ARGV[2]: this worker; ARGV[1 + 2i]: the tab that acted for user i's change
# (skipped); ARGV[2 + 2i]: user i's sealed change. Each tab named for another worker is
# published there, framed as ``framed`` frames it; returns, per user, {tabs relayed, {tabs
# left to reach from here}}. The users may come from several fan-outs
# (``Relay._call_waiting``).
_SEND_TO_USERS = """
local out = {}
for i, key in ipairs(KEYS) do
  local tabs = redis.call('HGETALL', key)
  local skip, blob = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  local relayed, left = 0, {}
  for j = 1, #tabs, 2 do
    local token, worker = tabs[j], tabs[j + 1]
    if token ~= skip then
      if worker ~= '' and worker ~= ARGV[2]
         and redis.call('PUBLISH', ARGV[1] .. worker, #token .. ':' .. token .. blob) > 0
      then
        relayed = relayed + 1
      else
        left[#left + 1] = token
      end
    end
  end
  out[i] = {relayed, left}
end
return out
"""


def framed(token: str, blob: bytes) -> bytes:
    """What goes over a worker's channel: the tab's token, length first, then the sealed
    change (as ``_SEND_TO_USERS`` builds it in Redis)."""
    raw = token.encode()
    return b"%d:%s%s" % (len(raw), raw, blob)


def _unframed(data: object) -> tuple[str, bytes]:
    if not isinstance(data, bytes):
        raise sealing.SealError("a relayed change that is not bytes")
    head, colon, rest = data.partition(b":")
    if not colon or not head.isdigit() or int(head) > MAX_TOKEN_BYTES:
        raise sealing.SealError("a relayed change without a tab")
    size = int(head)
    try:
        token = rest[:size].decode()
    except UnicodeDecodeError as exc:
        raise sealing.SealError("a relayed change for a tab that is not one") from exc
    return token, rest[size:]


Apply = Callable[[int, str, Change], Coroutine[Any, Any, None]]

# At most this many users' changes in one call of ``_SEND_TO_USERS`` (Redis runs a script to
# its end before anything else).
MAX_USERS_PER_CALL = 256


@dataclasses.dataclass(frozen=True, slots=True)
class _HandOver:
    """One fan-out waiting for its turn in a call of ``_SEND_TO_USERS``."""

    keys: list[str]
    skip: str
    blobs: list[bytes]
    here: str
    done: asyncio.Future[list[tuple[int, list[str]]]]


class Relay:
    """Send changes to other workers' tabs, and receive this worker's."""

    def __init__(self, url: str, prefix: str, *, name: str = "iris-relay") -> None:
        self._redis = redis.from_url(url, client_name=name)  # named in Redis's CLIENT LIST
        self._channel = f"{prefix}tab-changes:"
        self._running: set[asyncio.Task[None]] = set()
        self._send_to_users = self._redis.register_script(_SEND_TO_USERS)
        self._waiting: deque[_HandOver] = deque()
        self._caller: asyncio.Task[None] | None = None

    def channel(self, worker_id: str) -> str:
        return self._channel + worker_id

    @staticmethod
    def _sealed(user_id: int, change: Change) -> bytes:
        return sealing.seal({"user_id": user_id, "change": change}, label=LABEL)

    async def send(self, worker_id: str, user_id: int, token: str, change: Change) -> bool:
        """Publish ``change`` for ``token`` to ``worker_id``; False when no worker heard it."""
        blob = framed(token, self._sealed(user_id, change))
        receivers = await redis_result(self._redis.publish(self.channel(worker_id), blob))
        return bool(receivers)

    async def send_to_users(
        self,
        registry_keys: Sequence[str],
        changes: Sequence[tuple[int, Change]],
        *,
        here: str,
        skip_token: str | None,
    ) -> list[tuple[int, list[str]]]:
        """In one call to Redis, hand each ``(user, change)`` to the workers the user's tabs
        registered on (``registry_keys``, in the same order); per user, how many tabs were
        relayed and which are left to reach from here: tabs registered ``here`` or on no
        worker, and tabs whose worker nobody heard. ``skip_token`` gets nothing.

        The call may carry other fan-outs of this worker too: those that came while the
        previous call was under way go together (``_call_waiting``)."""
        if not changes:
            return []
        loop = asyncio.get_running_loop()
        waiting = _HandOver(
            keys=list(registry_keys),
            skip=skip_token or "",
            blobs=[self._sealed(user_id, change) for user_id, change in changes],
            here=here,
            done=loop.create_future(),
        )
        self._waiting.append(waiting)
        if self._caller is None:
            self._caller = loop.create_task(self._call_waiting())
        return await waiting.done

    def _next_call(self) -> list[_HandOver]:
        """The fan-outs the next call carries: in order, one worker name, at most
        ``MAX_USERS_PER_CALL`` users (but always the first fan-out, however many it has)."""
        first = self._waiting.popleft()
        taken, users = [first], len(first.keys)
        while self._waiting:
            following = self._waiting[0]
            if following.here != first.here or users + len(following.keys) > MAX_USERS_PER_CALL:
                break
            taken.append(self._waiting.popleft())
            users += len(following.keys)
        return taken

    async def _call_waiting(self) -> None:
        """Run the script for the waiting fan-outs, a batch at a time, until none wait."""
        taken: list[_HandOver] = []
        try:
            while self._waiting:
                taken = self._next_call()
                args: list[str | bytes] = [self._channel, taken[0].here]
                for waiting in taken:
                    for blob in waiting.blobs:
                        args += [waiting.skip, blob]
                keys = [key for waiting in taken for key in waiting.keys]
                try:
                    replies = await self._send_to_users(keys=keys, args=args)
                except Exception as exc:  # noqa: BLE001 - each fan-out handles it as before
                    for waiting in taken:
                        if not waiting.done.done():
                            waiting.done.set_exception(exc)
                    continue
                start = 0
                for waiting in taken:
                    mine = replies[start : start + len(waiting.keys)]
                    start += len(waiting.keys)
                    if not waiting.done.done():  # its caller may have been cancelled
                        waiting.done.set_result(
                            [(int(relayed), [t.decode() for t in left]) for relayed, left in mine]
                        )
                taken = []
        finally:
            self._caller = None
            for waiting in [*taken, *self._waiting]:  # cancelled (the worker is stopping)
                if not waiting.done.done():
                    waiting.done.set_exception(ConnectionError("the relay stopped"))
            self._waiting.clear()

    def _received(self, blob: object, apply: Apply) -> None:
        try:
            token, sealed = _unframed(blob)
            fields = sealing.unseal(sealed, label=LABEL)
            user_id, change = fields["user_id"], fields["change"]
            if not isinstance(user_id, int):
                raise sealing.SealError("a relayed change without a user")
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
