"""Helpers for bench scripts: throwaway databases and percentile summaries."""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from iris_reflex.db import engine_for, normalize_url
from iris_reflex.settings import PROJECT_ROOT

POSTGRES_ADMIN_URL = os.environ.get(
    "IRIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def migrate(url: str) -> None:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    command.upgrade(config, "head")


@contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """A migrated throwaway database (``sqlite`` or ``postgresql``), dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            migrate(url)
            yield url
            engine_for(url).dispose()
        return
    admin = sa.create_engine(normalize_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = f"iris_bench_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p90/p99 and max of a list of milliseconds."""
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": q[49], "p90": q[89], "p99": q[98], "max": ordered[-1]}


def fmt(stats: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:7.2f} ms" for k, v in stats.items())


def timed(fn: Callable[[], object]) -> float:
    import time

    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000
