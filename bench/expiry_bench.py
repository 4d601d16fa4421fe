"""Timed deletion: how late the sweep is, and how long a big sweep takes.

1. **Lag**: N timed messages (each with an attachment file) with deadlines spread over a few
   seconds; the real APScheduler sweeper (``jobs.sweeper.run``, as the app runs it) deletes
   them. For each message: seconds from its deadline to the moment its row was gone, polled
   every 5 ms, and whether its file was gone too.
2. **Big sweep**: M messages that are already expired, each with a file on disk, removed by
   ``expiry.sweep`` (batches of 500); rows/s and files/s.

Run: .venv/bin/python -m bench.expiry_bench [--lag-messages 200] [--sweep-messages 100000]
     [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("IRIS_JWT_SECRET", "bench-secret-" + "x" * 40)

import sqlalchemy as sa  # noqa: E402
from sqlmodel import Session  # noqa: E402

from bench.common import fmt, percentiles, scratch_database  # noqa: E402
from iris_reflex import clock  # noqa: E402
from iris_reflex.db import engine_for  # noqa: E402
from iris_reflex.jobs import sweeper  # noqa: E402
from iris_reflex.models import Attachment, Conversation, Message, User  # noqa: E402
from iris_reflex.services import expiry, storage  # noqa: E402
from iris_reflex.settings import get_settings  # noqa: E402


def _pair(db: Session) -> tuple[int, int, int]:
    now = clock.now()
    ada = User(username="ada", username_key="ada", password_hash="x", created_at=now)
    bob = User(username="bob", username_key="bob", password_hash="x", created_at=now)
    db.add_all([ada, bob])
    db.commit()
    assert ada.id is not None and bob.id is not None
    conv = Conversation(
        user_low_id=min(ada.id, bob.id), user_high_id=max(ada.id, bob.id), created_at=now
    )
    db.add(conv)
    db.commit()
    assert conv.id is not None
    return ada.id, bob.id, conv.id


def _insert(db: Session, n: int, deadline_of, sender: int, recipient: int, conv: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Bulk-insert n messages with one small stored file each; returns the storage keys."""
    now = clock.now()
    keys = [storage.new_key() for _ in range(n)]
    for key in keys:
        storage.write_bytes(key, b"x" * 512)
    for start in range(0, n, 5000):
        chunk = range(start, min(n, start + 5000))
        db.execute(
            sa.insert(Message),
            [
                {
                    "conversation_id": conv,
                    "sender_id": sender,
                    "recipient_id": recipient,
                    "kind": "text",
                    "body": f"m{i}",
                    "created_at": now,
                    "timer_seconds": 5,
                    "timer_mode": "from_send",
                    "expires_at": deadline_of(i),
                }
                for i in chunk
            ],
        )
        db.commit()
        ids = (
            db.execute(
                sa.select(Message.id)
                .where(Message.body.in_([f"m{i}" for i in chunk]))
                .order_by(Message.id)
            )
            .scalars()
            .all()
        )
        db.execute(
            sa.insert(Attachment),
            [
                {
                    "message_id": mid,
                    "uploader_id": sender,
                    "storage_key": keys[i],
                    "original_name": "f.bin",
                    "mime_type": "application/octet-stream",
                    "size_bytes": 512,
                    "created_at": now,
                }
                for mid, i in zip(ids, chunk, strict=True)
            ],
        )
        db.commit()
    return keys


def lag(url: str, n: int) -> None:
    with Session(engine_for(url)) as db:
        sender, recipient, conv = _pair(db)
        base = clock.now() + timedelta(seconds=3)
        deadlines = [base + timedelta(milliseconds=20 * i) for i in range(n)]
        keys = _insert(db, n, lambda i: deadlines[i], sender, recipient, conv)

    import iris_reflex.iris_reflex  # noqa: F401  (loaded as in the running app, not mid-sweep)

    async def watch() -> tuple[list[float], int]:
        task = asyncio.create_task(sweeper.run())
        gone_at: dict[int, float] = {}
        ids = list(range(n))
        with Session(engine_for(url)) as db:
            while len(gone_at) < n:
                present = set(db.execute(sa.select(Message.body)).scalars().all())
                db.rollback()
                stamp = time.time()
                for i in ids:
                    if i not in gone_at and f"m{i}" not in present:
                        gone_at[i] = stamp
                await asyncio.sleep(0.005)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        files_left = sum(storage.path_for(k).exists() for k in keys)
        return [gone_at[i] - deadlines[i].timestamp() for i in ids], files_left

    lags, files_left = asyncio.run(watch())
    print(f"  deadline -> row deleted, {n} messages: {fmt(percentiles([x * 1000 for x in lags]))}")
    print(
        f"  earliest deletion relative to deadline: {min(lags) * 1000:.1f} ms; "
        f"attachment files left on disk: {files_left}"
    )


def big_sweep(url: str, n: int) -> None:
    with Session(engine_for(url)) as db:
        sender, recipient, conv = _pair(db)
        past = clock.now() - timedelta(seconds=1)
        started = time.perf_counter()
        keys = _insert(db, n, lambda _i: past, sender, recipient, conv)
        setup = time.perf_counter() - started
        started = time.perf_counter()
        vanished = expiry.sweep(db, now=clock.now())
        took = time.perf_counter() - started
    files_left = sum(storage.path_for(k).exists() for k in keys)
    print(
        f"  sweep of {n:,} expired messages with one file each: {took:.1f} s "
        f"({len(vanished) / took:,.0f} messages+files/s; setup {setup:.0f} s); "
        f"files left: {files_left}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lag-messages", type=int, default=200)
    parser.add_argument("--sweep-messages", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    for kind in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        print(f"[{kind}]")
        with tempfile.TemporaryDirectory() as uploads:
            get_settings().upload_dir = Path(uploads)
            with scratch_database(kind) as url:
                get_settings().database_url = url
                lag(url, args.lag_messages)
            with scratch_database(kind) as url:
                get_settings().database_url = url
                big_sweep(url, args.sweep_messages)


if __name__ == "__main__":
    main()
