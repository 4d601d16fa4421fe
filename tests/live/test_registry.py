"""The user → tabs registry, in memory and in a real Redis."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from iris_reflex.live.registry import MemoryRegistry, RedisRegistry
from tests.redis_server import REDIS_URL, require_redis


def _redis_or_skip() -> RedisRegistry:
    require_redis()
    return RedisRegistry(REDIS_URL, prefix=f"iris-test-{secrets.token_hex(4)}:")


@pytest.fixture(params=["memory", "redis"])
def registry(request):
    return MemoryRegistry() if request.param == "memory" else _redis_or_skip()


def test_tabs_are_kept_per_user_and_removed_one_by_one(registry):
    async def scenario():
        await registry.add(1, "tab-a")
        await registry.add(1, "tab-b")
        await registry.add(2, "tab-c")
        assert await registry.tokens(1) == {"tab-a", "tab-b"}
        assert await registry.tokens(2) == {"tab-c"}
        await registry.remove(1, "tab-a")
        await registry.remove(1, "tab-a")  # idempotent
        assert await registry.tokens(1) == {"tab-b"}
        assert await registry.tokens(3) == set()
        assert await registry.tokens_of([2, 3, 1]) == [{"tab-c"}, set(), {"tab-b"}]
        assert await registry.tokens_of([1]) == [{"tab-b"}]
        assert await registry.users() == {1, 2}
        await registry.remove(2, "tab-c")
        assert await registry.users() == {1}
        if isinstance(registry, RedisRegistry):
            await registry.close()

    asyncio.run(scenario())


def test_redis_registry_is_shared_between_instances():
    first = _redis_or_skip()
    second = RedisRegistry(REDIS_URL, prefix=first._prefix)

    async def scenario():
        await first.add(7, "tab-from-worker-1")
        assert await second.tokens(7) == {"tab-from-worker-1"}
        await first.close()
        await second.close()

    asyncio.run(scenario())
