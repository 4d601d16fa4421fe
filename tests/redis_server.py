"""The test Redis: where it is, and a check that it answers before a test relies on it."""

from __future__ import annotations

import os

import pytest

REDIS_URL = os.environ.get("IRIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require_redis() -> None:
    """Skip the test when the test Redis does not answer; fail it instead under
    ``IRIS_REQUIRE_REDIS=1`` (CI: a Redis case is never skipped there)."""
    import redis

    try:
        redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("IRIS_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
