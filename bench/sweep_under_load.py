"""Live delivery latency while the app sweeps a large batch of expired messages.

Prepares a fresh SQLite database with N messages between two other users, each with a stored
file, all expiring at the same moment about a minute ahead; starts ``./iris run`` on it; then
two friends in headless Chromium exchange messages one after another (as in
``bench.delivery_latency``) until the sweep has removed all N rows. Each delivery is labelled
before / during / after the sweep, as seen by polling the row count from this process.

Run: .venv/bin/python -m bench.sweep_under_load [--messages 100000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from bench.browser import served_app, two_friends, wait
from bench.common import fmt, migrate, percentiles
from bench.delivery_latency import OBSERVER


def prepare(db_path: Path, uploads: Path, n: int, expire_in: float) -> float:
    """Migrate, insert N soon-expiring messages with files; returns their deadline (epoch)."""
    os.environ["IRIS_UPLOAD_DIR"] = str(uploads)
    os.environ.setdefault("IRIS_JWT_SECRET", "bench-secret-" + "x" * 40)
    url = f"sqlite:///{db_path}"
    migrate(url)
    from sqlmodel import Session

    from bench.expiry_bench import _insert, _pair
    from iris_reflex import clock
    from iris_reflex.db import engine_for
    from iris_reflex.settings import get_settings

    get_settings().upload_dir = uploads
    deadline = clock.now() + timedelta(seconds=expire_in)
    with Session(engine_for(url)) as db:
        sender, recipient, conv = _pair(db)
        _insert(db, n, lambda _i: deadline, sender, recipient, conv)
    engine_for(url).dispose()
    return deadline.timestamp()


def run(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="iris-sweepload-"))
    db_path, uploads = tmp / "bench.db", tmp / "uploads"
    started = time.time()
    deadline = prepare(db_path, uploads, n, expire_in=60 + n / 2500)
    print(
        f"prepared {n:,} messages with files in {time.time() - started:.0f} s; "
        f"they expire in {deadline - time.time():.0f} s"
    )

    sweep = {"start": 0.0, "end": 0.0}

    def watch_rows() -> None:
        with sqlite3.connect(db_path, timeout=30) as conn:
            while True:
                count = conn.execute(
                    "SELECT count(*) FROM messages WHERE body LIKE 'm%'"
                ).fetchone()[0]
                now = time.time()
                if count < n and not sweep["start"]:
                    sweep["start"] = now
                if count == 0:
                    sweep["end"] = now
                    return
                time.sleep(0.05)

    watcher = threading.Thread(target=watch_rows, daemon=True)
    watcher.start()
    samples: list[tuple[float, float]] = []  # (sent at, latency ms)
    app = served_app(f"sqlite:///{db_path}", tmp=tmp, env={"IRIS_UPLOAD_DIR": str(uploads)})
    # ("ada" and "bob" are the seeded users whose messages expire.)
    with app as base, two_friends(base, "alice", "carol") as (ada, bob):
        bob.evaluate(OBSERVER)
        composer = ada.get_by_label("Message", exact=True)
        i = 0
        stop_at = None
        while True:
            if sweep["end"] and stop_at is None:
                stop_at = time.time() + 10
            if stop_at is not None and time.time() > stop_at:
                break
            if time.time() > deadline + 300:
                raise TimeoutError("the sweep did not finish within 5 minutes")
            text = f"x{i:06d}"
            composer.fill(text)
            sent_at = ada.evaluate("Date.now()")
            composer.press("Enter")
            wait(
                lambda t=text: bob.evaluate(f"'{t}' in window.__arrivals"),
                60,
                f"message {text}",
            )
            samples.append((sent_at / 1000, bob.evaluate(f"window.__arrivals['{text}']") - sent_at))
            i += 1
    start, end = sweep["start"], sweep["end"]
    before = [ms for at, ms in samples if at < start]
    during = [ms for at, ms in samples if start <= at <= end]
    after = [ms for at, ms in samples if at > end]
    print(f"sweep of {n:,} messages + files inside the running app: {end - start:.1f} s")
    for label, values in (("before", before), ("during", during), ("after", after)):
        if len(values) >= 2:
            print(f"  delivery {label:6} (n={len(values):4}): {fmt(percentiles(values))}")
        else:
            print(f"  delivery {label:6} (n={len(values)}): too few samples")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    run(args.messages)


if __name__ == "__main__":
    main()
