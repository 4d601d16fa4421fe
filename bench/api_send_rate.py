"""Sustained send rate through the JSON API, on PostgreSQL.

Starts Iris the way the README does (``./iris run``: the API inside Reflex's backend, one
worker) on a throwaway PostgreSQL database, registers one pair of friends per client, and
has each client post messages (``POST /api/conversations/{friend}/messages``, bearer token)
back to back for a fixed time. Each client has its own conversation, so the figure is the
server's throughput rather than contention on one conversation row. Every send runs the
whole path: token and session check, friendship check, insert, commit, and the live
notification scheduled after the response (no tab is open, so no push is delivered).

Run: .venv/bin/python -m bench.api_send_rate [--seconds 20] [--concurrency 1 16]
     [--url http://127.0.0.1:8080]  (a running Iris instead, e.g. ``./iris cluster``; its
     registration limit must allow two users per client)
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time

import aiohttp
import httpx

from bench.browser import PASSWORD, served_app
from bench.common import fmt, percentiles, scratch_database

WARM_UP_SECONDS = 3.0
RUN = secrets.token_hex(3)  # new names each run, so a running server can be measured again


async def _client_for_pair(api: httpx.AsyncClient, n: int) -> tuple[dict[str, str], str]:
    """Register two users and make them friends; the sender's headers and the friend's name."""
    sender, receiver = f"s{RUN}n{n}", f"r{RUN}n{n}"
    for name in (sender, receiver):
        response = await api.post(
            "/api/auth/register", json={"username": name, "password": PASSWORD}
        )
        response.raise_for_status()
    tokens = []
    for name in (sender, receiver):
        response = await api.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        response.raise_for_status()
        tokens.append({"Authorization": f"Bearer {response.json()['access_token']}"})
    request = await api.post(
        "/api/friends/requests", json={"username": receiver}, headers=tokens[0]
    )
    request.raise_for_status()
    accept = await api.post(
        f"/api/friends/requests/{request.json()['id']}/accept", headers=tokens[1]
    )
    accept.raise_for_status()
    return tokens[0], receiver


async def _send_loop(
    api: aiohttp.ClientSession,
    headers: dict[str, str],
    friend: str,
    *,
    until: float,
    out: Stats,
) -> None:
    """Post messages one after another until ``until`` (a ``perf_counter`` time)."""
    url = f"/api/conversations/{friend}/messages"
    i = 0
    while time.perf_counter() < until:
        start = time.perf_counter()
        async with api.post(url, json={"body": f"m{i}"}, headers=headers) as response:
            await response.read()
        out.latencies.append((time.perf_counter() - start) * 1000)
        if response.status == 201:
            out.sent += 1
        else:
            out.errors += 1
        i += 1


class Stats:
    """What one level measured."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.sent = 0
        self.errors = 0


async def _level(base: str, concurrency: int, seconds: float, first_pair: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as setup:
        pairs = [await _client_for_pair(setup, first_pair + i) for i in range(concurrency)]
    # The measured requests go through aiohttp: the bench shares the machine's two cores with
    # the server, and httpx cost it about twice the CPU per request.
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as api:
        warm_up = Stats()
        await asyncio.gather(
            *(
                _send_loop(api, h, f, until=time.perf_counter() + WARM_UP_SECONDS, out=warm_up)
                for h, f in pairs
            )
        )
        stats = Stats()
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(
            *(_send_loop(api, h, f, until=started + seconds, out=stats) for h, f in pairs)
        )
        elapsed = time.perf_counter() - started
        bench_cpu = (time.process_time() - cpu_started) / elapsed * 100
    print(
        f"  concurrency {concurrency:2d}: {stats.sent / elapsed:7.1f} messages/s "
        f"({stats.sent} in {elapsed:.1f} s, {stats.errors} errors; "
        f"the bench itself used {bench_cpu:.0f} % of a core)"
    )
    print(f"                  request latency {fmt(percentiles(stats.latencies))}")


async def _run(base: str, levels: list[int], seconds: float) -> None:
    first = 0
    for concurrency in levels:
        await _level(base, concurrency, seconds, first)
        first += concurrency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time per level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--url", help="an already-running Iris (e.g. ./iris cluster's address)")
    args = parser.parse_args()
    if args.url:
        print(
            f"JSON API send rate, {args.url}, {args.seconds:.0f} s per level after "
            f"{WARM_UP_SECONDS:.0f} s warm-up, one conversation per client:"
        )
        asyncio.run(_run(args.url.rstrip("/"), args.concurrency, args.seconds))
        return
    with scratch_database("postgresql") as url, served_app(url) as base:
        print(
            f"JSON API send rate, ./iris run (one worker), PostgreSQL, {args.seconds:.0f} s "
            f"per level after {WARM_UP_SECONDS:.0f} s warm-up, one conversation per client:"
        )
        asyncio.run(_run(base, args.concurrency, args.seconds))


if __name__ == "__main__":
    main()
