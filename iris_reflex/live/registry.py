"""Which open tabs (Reflex client tokens) belong to which signed-in user.

Reflex knows tabs, not users. A tab registers here once its session is verified and leaves
on logout; pushes then reach every tab of a user. With several workers each entry also names
the worker the tab registered on, so one Redis call can look a user's tabs up and hand a
change to their workers (``relay.Relay.send_to_users``). With one worker the map lives in memory;
with several workers (``IRIS_REDIS_URL``) it lives in Redis, so a message sent through any
worker finds tabs connected to any other (Reflex forwards the state update itself).
Entries can go stale (a closed tab): the pusher drops tokens Reflex no longer knows, and Redis
entries expire a day after their last registration.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Sequence
from typing import Protocol, TypeVar

import redis.asyncio as redis

from iris_reflex.settings import get_settings

REDIS_TTL_SECONDS = 24 * 3600
T = TypeVar("T")


async def redis_result(result: Awaitable[T] | T) -> T:
    """redis-py types its commands for its sync and async clients at once; this one is
    async, so every command returns an awaitable."""
    return await result if inspect.isawaitable(result) else result


class TabRegistry(Protocol):
    """The user → tabs map."""

    async def add(self, user_id: int, token: str, worker_id: str | None = None) -> None:
        """Register ``token`` as ``user_id``'s, connected to ``worker_id`` (None: unknown,
        or one worker)."""
        ...

    async def remove(self, user_id: int, token: str) -> None: ...

    async def tokens(self, user_id: int) -> set[str]: ...

    async def tokens_of(self, user_ids: Sequence[int]) -> list[set[str]]:
        """``tokens`` of each user, in order, in one trip (a message's fan-out asks for the
        recipient's tabs and the sender's other tabs at once)."""
        ...

    async def users(self) -> set[int]: ...


class MemoryRegistry:
    """For a single backend worker (no Redis). Only the event loop touches it and nothing
    in it awaits, so each call is atomic without a lock."""

    def __init__(self) -> None:
        self._tabs: dict[int, set[str]] = {}

    async def add(self, user_id: int, token: str, worker_id: str | None = None) -> None:
        self._tabs.setdefault(user_id, set()).add(token)

    async def remove(self, user_id: int, token: str) -> None:
        tabs = self._tabs.get(user_id)
        if tabs is not None:
            tabs.discard(token)
            if not tabs:
                del self._tabs[user_id]

    async def tokens(self, user_id: int) -> set[str]:
        return set(self._tabs.get(user_id, ()))

    async def tokens_of(self, user_ids: Sequence[int]) -> list[set[str]]:
        return [set(self._tabs.get(user_id, ())) for user_id in user_ids]

    async def users(self) -> set[int]:
        return set(self._tabs)


class RedisRegistry:
    """Shared by every worker: one Redis hash per user, each tab's token naming the worker
    it registered on ("" when unknown)."""

    def __init__(self, url: str, prefix: str = "iris:tab-workers:") -> None:
        self._redis = redis.from_url(url, decode_responses=True)
        self._prefix = prefix

    def key(self, user_id: int) -> str:
        """The user's hash (``relay.Relay.send_to_users`` reads it inside Redis)."""
        return f"{self._prefix}{user_id}"

    async def add(self, user_id: int, token: str, worker_id: str | None = None) -> None:
        key = self.key(user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, token, worker_id or "")
            pipe.expire(key, REDIS_TTL_SECONDS)
            await pipe.execute()

    async def remove(self, user_id: int, token: str) -> None:
        await redis_result(self._redis.hdel(self.key(user_id), token))

    async def tokens(self, user_id: int) -> set[str]:
        return set(await redis_result(self._redis.hkeys(self.key(user_id))))

    async def tokens_of(self, user_ids: Sequence[int]) -> list[set[str]]:
        if len(user_ids) == 1:
            return [await self.tokens(user_ids[0])]
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.hkeys(self.key(user_id))
            return [set(members) for members in await pipe.execute()]

    async def users(self) -> set[int]:
        found: set[int] = set()
        async for key in self._redis.scan_iter(match=f"{self._prefix}*", count=500):
            suffix = key[len(self._prefix) :]
            if suffix.isdigit():
                found.add(int(suffix))
        return found

    async def close(self) -> None:
        await self._redis.aclose()


@functools.cache
def get_registry() -> TabRegistry:
    """The registry for this process: Redis when configured, else memory."""
    settings = get_settings()
    if not settings.redis_url:
        return MemoryRegistry()
    return RedisRegistry(settings.redis_url, prefix=f"{settings.redis_prefix}tab-workers:")
