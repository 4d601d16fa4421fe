"""The expiry sweep, scheduled with APScheduler.

Why it is built this way:
- Reads already hide a message the moment its deadline passes (``services.conversations``),
  so the sweep decides nothing about visibility: it reclaims rows and files, and tells open
  screens to re-read, which is what makes a message vanish live.
- **Precision**: after every run the scheduler sets a one-off wake-up at the next deadline in
  the database, and the send and read paths call ``wake_at`` when they create an earlier one.
- **Safety**: an interval job catches anything missed (another worker's deadline, a clock
  jump), and one run at start-up sweeps whatever fell due while the app was down.
- **Housekeeping**: the catch-up run also removes partial, abandoned and orphan uploads, and
  login failures and sessions that have expired (``auth.prune``), unanswered passkey
  challenges (``passkeys.prune``) and stale rate counters.
- **Telling screens**: the sweeper knows no screens; the app registers ``on_vanished``.
- **One sweeper**: every worker runs this scheduler, but a run first takes a lock (a
  PostgreSQL advisory lock; for SQLite, an exclusive file lock beside the database) and a
  worker that does not get it skips that run. Deleting is idempotent, so overlap would only
  waste work, never lose or expose anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text

from iris_reflex import clock, metrics
from iris_reflex.db import forget_deleted, get_engine, session_scope
from iris_reflex.services import auth, expiry, limits, passkeys, storage, uploads

log = logging.getLogger("iris.sweeper")

CATCH_UP_SECONDS = 15
LOCK_RETRY = timedelta(milliseconds=100)
ORPHAN_AGE = timedelta(hours=1)
ADVISORY_LOCK_KEY = 0x1815_5EED  # any constant shared by every Iris worker
NEXT_JOB_ID = "sweep-next"

_scheduler: AsyncIOScheduler | None = None
_loop: asyncio.AbstractEventLoop | None = None


@contextlib.contextmanager
def sweeper_lock() -> Iterator[bool]:
    """Yield True when this process may sweep now, False when another one is sweeping."""
    engine = get_engine()
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            got = bool(
                conn.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}
                ).scalar()
            )
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
        return
    database = engine.url.database or "iris"
    lock_path = Path(f"{database}.sweep.lock") if database != ":memory:" else None
    if lock_path is None:
        yield True
        return
    with os.fdopen(
        os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a"
    ) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# PostgreSQL keeps deleted rows in its pages until VACUUM: the catch-up run vacuums the
# message tables when something was deleted, at most this often (autovacuum may come first).
VACUUM_EVERY = 3600.0
_unvacuumed = False
_last_vacuum = float("-inf")


def sweep_once(*, with_orphans: bool = False) -> tuple[list[expiry.Vanished], datetime | None]:
    """Delete what is due (under the lock); returns what vanished and the next deadline."""
    with sweeper_lock() as mine:
        if not mine:
            # Someone else is sweeping right now; look again shortly rather than wait for the
            # catch-up, in case their run started just before our deadline.
            return [], clock.now() + LOCK_RETRY
        now = clock.now()
        with session_scope() as db:
            vanished = expiry.sweep(db, now=now)
            if with_orphans:
                abandoned = uploads.delete_abandoned_uploads(
                    db, older_than=now - uploads.PENDING_LIFETIME
                )
                crashed = storage.delete_stale_incoming(older_than=(now - ORPHAN_AGE).timestamp())
                removed = expiry.delete_orphan_files(db, older_than=now - ORPHAN_AGE)
                # Housekeeping: old login failures, expired sessions, stale rate counters.
                auth.prune(db, now=now)
                passkeys.prune(db, now=now)
                limits.prune(db, now=now)
                if abandoned or crashed or removed:
                    log.info(
                        "removed %d abandoned upload(s), %d partial and %d orphan file(s)",
                        abandoned,
                        crashed,
                        removed,
                    )
            upcoming = expiry.next_deadline(db)
    global _unvacuumed, _last_vacuum
    _unvacuumed = _unvacuumed or bool(vanished)
    vacuum = with_orphans and _unvacuumed and time.monotonic() - _last_vacuum >= VACUUM_EVERY
    if vanished or vacuum:
        forget_deleted(vacuum=vacuum)
        if vacuum:
            _unvacuumed, _last_vacuum = False, time.monotonic()
    if vanished:
        log.info("swept %d message(s)", len(vanished))
        metrics.SWEPT.inc(len(vanished))
        done = clock.now()
        for gone in vanished:
            if gone.expires_at is not None and gone.expires_at <= now:
                metrics.SWEEP_LAG.observe((done - gone.expires_at).total_seconds())
    return vanished, upcoming


VanishedListener = Callable[[set[int]], None]
_on_vanished: VanishedListener | None = None


def on_vanished(listener: VanishedListener | None) -> None:
    """Who to tell when a sweep deleted messages: called with the people whose screens
    showed them (the app connects this to the live layer; the sweeper knows no screens)."""
    global _on_vanished
    _on_vanished = listener


def _notify(vanished: list[expiry.Vanished]) -> None:
    listener = _on_vanished
    if listener is not None:
        listener({v.sender_id for v in vanished} | {v.recipient_id for v in vanished})


_in_process = asyncio.Lock()


async def run_sweep(with_orphans: bool = False) -> None:
    """One scheduled run: sweep in a thread, tell screens, set the next wake-up.

    Runs in one process queue behind each other (the cross-process lock is for other
    workers), so a wake-up that fires during a run sweeps right after it, not a retry later.
    """
    try:
        async with _in_process:
            with metrics.SWEEP_SECONDS.time():
                vanished, upcoming = await asyncio.to_thread(sweep_once, with_orphans=with_orphans)
    except Exception:
        log.exception("expiry sweep failed; the catch-up run will retry")
        return
    if upcoming is not None:
        _schedule(upcoming)  # before notifying: many open screens must not delay the next run
    if vanished:
        _notify(vanished)


def _schedule(when: datetime) -> None:
    scheduler = _scheduler
    if scheduler is None:
        return
    when = max(when, clock.now())
    current = scheduler.get_job(NEXT_JOB_ID)
    if current is not None and current.next_run_time is not None and current.next_run_time <= when:
        return
    # A run schedules the next wake-up before it has finished (it still has screens to
    # notify), so the wake-up job must be allowed to start while that run is still going.
    scheduler.add_job(
        run_sweep,
        DateTrigger(run_date=when),
        id=NEXT_JOB_ID,
        replace_existing=True,
        misfire_grace_time=None,
        max_instances=4,
    )


def wake_at(when: datetime | None) -> None:
    """Make sure a sweep runs at ``when`` (safe to call from any thread or event handler)."""
    loop = _loop
    if when is None or loop is None or loop.is_closed():
        return
    loop.call_soon_threadsafe(_schedule, when)


async def run() -> None:
    """Lifespan task: start the scheduler, sweep once now, keep running until shutdown."""
    global _scheduler, _loop
    _loop = asyncio.get_running_loop()
    scheduler = AsyncIOScheduler(
        timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1}
    )
    scheduler.add_job(
        run_sweep,
        IntervalTrigger(seconds=CATCH_UP_SECONDS),
        id="sweep-catch-up",
        kwargs={"with_orphans": True},
    )
    scheduler.start()
    _scheduler = scheduler
    try:
        await run_sweep(with_orphans=True)  # deadlines that fell due while the app was down
        await asyncio.Event().wait()
    finally:
        _scheduler = None
        _loop = None
        scheduler.shutdown(wait=False)
