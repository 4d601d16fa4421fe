"""The backend's event loop is uvloop's: Granian picks it by itself when it is installed
(``requirements.txt``), and ``bench.load_tabs`` measured ~10 % more messages per second on
one worker than on asyncio's own loop. This fails when uvloop goes missing, or when Granian
would prefer another loop (it prefers its own ``rloop`` when that is installed)."""

from __future__ import annotations

import asyncio

from granian._loops import loops


def test_granian_builds_its_default_loop_from_uvloop():
    loop = loops.get("auto")  # what Granian(loop=Loops.auto), Reflex's way of calling it, does
    try:
        assert type(loop).__module__.startswith("uvloop"), type(loop)
        assert loop.run_until_complete(asyncio.sleep(0, result="ran")) == "ran"
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def test_redis_replies_are_parsed_by_hiredis():
    """redis-py parses replies in C when hiredis is installed (``requirements.txt``): every
    Redis call of Reflex's state manager, the registry and the relay goes through it. This
    fails when hiredis goes missing or redis-py stops taking it."""
    import redis.asyncio as redis
    from redis._parsers import _AsyncHiredisParser

    client = redis.Redis()
    try:
        connection = client.connection_pool.make_connection()
        assert isinstance(connection._parser, _AsyncHiredisParser), type(connection._parser)
    finally:
        asyncio.run(client.aclose())
