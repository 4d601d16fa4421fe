"""Helpers for bench scripts: throwaway databases, the app started as the README starts it,
and percentile summaries. Benches never import tests/: these are their own small copies."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


CHROMIUM = os.environ.get("IRIS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_DEADLINE = 420.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return response.status < 500
    except OSError:
        return False


@contextmanager
def iris_process(
    command: list[str], *, env: dict[str, str], log: Path, ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``./iris <command>`` in its own process group, ready once ``ready_url`` answers;
    stopped (the whole group) on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["./iris", *command],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        end = time.monotonic() + START_DEADLINE
        while not _answers(ready_url):
            if process.poll() is not None or time.monotonic() > end:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
                raise RuntimeError(f"./iris {' '.join(command)} did not start ({log}):\n{tail}")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


# Benches sign many people up from one address and befriend them all: the rate limits (which
# have tests of their own) would only stop them.
UNLIMITED = {
    f"IRIS_{name}": "1000000"
    for name in ("FRIEND_REQUESTS_PER_HOUR", "REGISTRATIONS_PER_HOUR", "SEARCHES_PER_MINUTE")
}


def app_env(tmp: Path, database_url: str) -> dict[str, str]:
    """Settings for a benched app: its own database, secret and upload folder."""
    return {
        "IRIS_DATABASE_URL": database_url,
        "IRIS_JWT_SECRET_FILE": str(tmp / "secret"),
        "IRIS_JWT_SECRET": "",
        "IRIS_UPLOAD_DIR": str(tmp / "uploads"),
        "REFLEX_UPLOADED_FILES_DIR": str(tmp / "uploads"),
        **UNLIMITED,
    }


@dataclass
class ServedApp:
    """``./iris run`` started by a bench: its address, its process (the root of the server's
    process tree, for CPU and memory figures) and its log."""

    url: str
    pid: int
    log: Path
    secret_file: Path  # the JWT secret the server signs with (a bench may sign users in)


@contextmanager
def served_iris(
    database_url: str, *, tmp: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[ServedApp]:
    """``./iris run`` (production build, one port, one worker without Redis) on a free port,
    with its own secret and upload folder; stopped (its whole process group) afterwards."""
    tmp = tmp or Path(tempfile.mkdtemp(prefix="iris-bench-"))
    port = free_port()
    settings = app_env(tmp, database_url) | {"REFLEX_FRONTEND_PORT": str(port)} | (env or {})
    url = f"http://127.0.0.1:{port}"
    log = tmp / "run.log"
    with iris_process(["run"], env=settings, log=log, ready_url=url + "/ping") as process:
        yield ServedApp(url=url, pid=process.pid, log=log, secret_file=tmp / "secret")


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
