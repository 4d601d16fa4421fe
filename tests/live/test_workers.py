"""The roll of backend workers in a real Redis: a worker killed outright is known dead at
once, a live or unknown one never is, and one survivor claims the clean-up."""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import sys
import time

import pytest

from iris_reflex.live.workers import WorkerRoll
from iris_reflex.settings import PROJECT_ROOT
from tests.redis_server import REDIS_URL, require_redis

# A worker in its own process: joins the roll, says so, and waits to be killed.
WORKER = """
import asyncio, sys
from iris_reflex.live.workers import WorkerRoll

async def main():
    roll = WorkerRoll(sys.argv[1], sys.argv[2])
    await roll.join(sys.argv[3])
    print("joined", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
def prefix() -> str:
    require_redis()
    return f"iris-test-{secrets.token_hex(4)}:"


def test_a_killed_worker_is_dead_at_once_and_reported_once(prefix: str):
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, REDIS_URL, prefix, "worker-a"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "joined"

        async def scenario() -> None:
            survivor = WorkerRoll(REDIS_URL, prefix)
            other = WorkerRoll(REDIS_URL, prefix)
            await survivor.join("worker-b")
            await other.join("worker-c")
            assert not await survivor.is_dead("worker-a")  # alive, subscribed
            await survivor.join("worker-b")  # every tick joins again: still one subscription
            assert not await other.is_dead("worker-b")
            assert not await survivor.is_dead("worker-never-seen")  # not on the roll
            assert await survivor.newly_dead() == []

            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            # Redis drops a dead client's subscription when its socket closes: poll briefly.
            end = time.monotonic() + 10
            while not await survivor.is_dead("worker-a") and time.monotonic() < end:
                await asyncio.sleep(0.05)
            assert await survivor.is_dead("worker-a")
            assert not await survivor.is_dead("worker-b")
            assert not await survivor.is_dead("worker-c")
            assert await survivor.newly_dead() == ["worker-a"]
            assert await survivor.newly_dead() == []  # reported once
            assert await other.newly_dead() == ["worker-a"]  # every survivor hears of it
            # Exactly one survivor cleans up after it.
            assert [await survivor.claim("worker-a"), await other.claim("worker-a")] == [
                True,
                False,
            ]
            await survivor.close()
            await other.close()
            import redis.asyncio as aioredis

            client = aioredis.from_url(REDIS_URL)
            keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
            assert keys  # the roll and the claim were written under this prefix
            await client.delete(*keys)
            await client.aclose()

        asyncio.run(scenario())
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
