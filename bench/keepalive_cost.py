"""What the keep-alive of stored tab state costs a worker (``iris_reflex/live/keepalive.py``).

With several workers, every ``expiry / 3`` seconds (5 minutes at the default 15-minute
expiry) each worker renews every Redis key Reflex keeps for each tab connected to it: one
per state class of the app, and the tab's socket record. This script links ``--tabs`` tabs
to one worker through Reflex's own Redis token manager (their socket records are real), gives
every state key of every tab a value (the worst case: every key exists and is renewed), and
times ``keepalive.renew_local_tabs`` over several rounds: wall time, this process's CPU, the
Redis server's CPU (``INFO cpu``), the keys and round trips sent. Then it deletes what it
wrote.

Run: .venv/bin/python -m bench.keepalive_cost [--tabs 1000] [--rounds 5]
     (Redis from IRIS_TEST_REDIS_URL, default redis://127.0.0.1:6379/15)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("IRIS_JWT_SECRET", "bench-secret-" + "x" * 40)

import redis.asyncio as aioredis  # noqa: E402
from reflex.istate.manager.redis import StateManagerRedis  # noqa: E402
from reflex.utils.token_manager import RedisTokenManager  # noqa: E402

import iris_reflex.iris_reflex  # noqa: E402, F401  (registers every state on rx.State)
from iris_reflex.live import keepalive  # noqa: E402
from iris_reflex.state.tabs import ReflexTabs  # noqa: E402

EXPIRY = 900


async def _redis_cpu(client: Any) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def main(url: str, n_tabs: int, rounds: int) -> None:
    tokens = RedisTokenManager(aioredis.from_url(url))
    tokens.token_expiration = EXPIRY
    worker = SimpleNamespace(
        state_manager=StateManagerRedis(redis=aioredis.from_url(url), token_expiration=EXPIRY),
        event_namespace=SimpleNamespace(_token_manager=tokens),
    )
    tabs = ReflexTabs(worker)
    client = aioredis.from_url(url)
    prefix = f"kabench{secrets.token_hex(4)}"
    names = [f"{prefix}{i:05d}" for i in range(n_tabs)]
    try:
        for i, token in enumerate(names):
            await tokens.link_token_to_sid(token, f"sid-{i}")
        assert tabs.stored_state() is not None
        per_tab = tabs.stored_keys(names[0])
        async with client.pipeline(transaction=False) as pipe:
            for token in names:
                for key in tabs.stored_keys(token)[:-1]:  # the record is Reflex's, already set
                    pipe.set(key, b"x", ex=EXPIRY)
            await pipe.execute()

        walls, cpus, server = [], [], []
        done = None
        for _ in range(rounds):
            server_before = await _redis_cpu(client)
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            done = await keepalive.renew_local_tabs(tabs)
            cpus.append(time.process_time() - cpu_before)
            walls.append(time.perf_counter() - wall_before)
            server.append(await _redis_cpu(client) - server_before)
        assert done is not None
        print(f"tabs connected to this worker: {done.tabs}")
        print(f"keys per tab: {len(per_tab)} ({len(per_tab) - 1} state classes + socket record)")
        print(
            f"per round: {done.keys} keys (EXPIRE each) in {done.trips} round trips, "
            f"{done.renewed} keys renewed"
        )
        print(
            f"wall ms per round: median {statistics.median(walls) * 1000:.1f} "
            f"(min {min(walls) * 1000:.1f}, max {max(walls) * 1000:.1f})"
        )
        print(
            f"worker CPU ms per round: median {statistics.median(cpus) * 1000:.1f} "
            f"(min {min(cpus) * 1000:.1f}, max {max(cpus) * 1000:.1f})"
        )
        print(f"Redis server CPU ms per round: median {statistics.median(server) * 1000:.1f}")
        interval = keepalive.interval_for(EXPIRY)
        print(
            f"at the default expiry ({EXPIRY} s, a round every {interval:.0f} s): "
            f"{statistics.median(cpus) / interval * 100:.4f} % of a core for the worker"
        )

        # The same keys renewed with a pipeline of EXPIRE commands instead of the script.
        keys = [key for token in names for key in tabs.stored_keys(token)]
        piped, piped_server = [], []
        for _ in range(rounds):
            server_before = await _redis_cpu(client)
            cpu_before = time.process_time()
            for start in range(0, len(keys), keepalive.BATCH_KEYS):
                async with client.pipeline(transaction=False) as pipe:
                    for key in keys[start : start + keepalive.BATCH_KEYS]:
                        pipe.expire(key, EXPIRY)
                    await pipe.execute()
            piped.append(time.process_time() - cpu_before)
            piped_server.append(await _redis_cpu(client) - server_before)
        print(
            f"for comparison, a pipeline of EXPIRE commands: worker CPU ms per round median "
            f"{statistics.median(piped) * 1000:.1f}, Redis server CPU ms "
            f"{statistics.median(piped_server) * 1000:.1f}"
        )
    finally:
        # Reflex's token manager re-creates a deleted record of its own live socket: close
        # it first.
        await worker.state_manager.close()
        await tokens.close()
        keys = [k async for k in client.scan_iter(match=f"*{prefix}*", count=10_000)]
        for start in range(0, len(keys), 10_000):
            await client.delete(*keys[start : start + 10_000])
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tabs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    url = os.environ.get("IRIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    asyncio.run(main(url, args.tabs, args.rounds))
