"""Rate limits shared by every worker: how often one sender, address or user may act.

Why it is built this way:
- The counters live in the database (``rate_counters``), not in a worker's memory, so the
  limit holds across several backend workers, and on SQLite and PostgreSQL alike. Redis is
  optional in Iris (only for Reflex state with several workers); the actions limited here
  (a friend request, a registration, a search) already use the database, so one more small
  statement costs less than a second store that could disagree with it or be missing.
- One row per (bucket, key) with a fixed window: ``INSERT ... ON CONFLICT DO UPDATE ...
  RETURNING`` counts the hit and reads the count in one statement, so two workers counting
  at once cannot both see "one left" (no read-then-write race), and the table holds one row
  per active key, not one per event. A fixed window lets through at most twice the limit
  across a window boundary; that is accepted for these limits.
- Attempts count whether or not the action then succeeds (a request to a missing user, a
  taken username): what is limited is how often someone can make the server work and push.
- The limiter commits its own hit before the action runs, so the action's own transaction
  is untouched by it. Callers are services: the web UI and the JSON API reach the limits
  through the same functions, and ``Throttled`` becomes a toast or a 429 with Retry-After.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, delete

from iris_reflex import clock
from iris_reflex.errors import Throttled
from iris_reflex.models import RateCounter
from iris_reflex.settings import get_settings

KEY_MAX = 128
PRUNE_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Limit:
    """A named limit: at most ``count`` hits per ``window`` for one key."""

    bucket: str
    count: int
    window: timedelta
    message: str


def friend_requests() -> Limit:
    """Friend requests one user may send per hour (each can push to the addressee's tabs)."""
    return Limit(
        bucket="friend_request",
        count=get_settings().friend_requests_per_hour,
        window=timedelta(hours=1),
        message="You have sent many friend requests recently.",
    )


def registrations() -> Limit:
    """Accounts one address may try to create per hour."""
    return Limit(
        bucket="register",
        count=get_settings().registrations_per_hour,
        window=timedelta(hours=1),
        message="Too many accounts were created from your network recently.",
    )


def searches() -> Limit:
    """Username searches one user may run per minute (search-as-you-type included)."""
    return Limit(
        bucket="search",
        count=get_settings().searches_per_minute,
        window=timedelta(minutes=1),
        message="You are searching very fast.",
    )


def passkey_challenges() -> Limit:
    """Passkey sign-in challenges one address may ask for per minute (each is a stored row,
    and each try at a passkey sign-in needs a fresh one)."""
    return Limit(
        bucket="passkey_challenge",
        count=get_settings().passkey_challenges_per_minute,
        window=timedelta(minutes=1),
        message="Too many passkey sign-ins were started from your network.",
    )


def _wait_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minutes"


def hit(session: Session, limit: Limit, key: str, *, now: datetime | None = None) -> None:
    """Count one attempt of ``key`` against ``limit`` and commit it.

    Raises:
        Throttled: this attempt is over the limit; ``retry_after`` is when the window ends.
    """
    now = now or clock.now()
    key = key[:KEY_MAX] or "unknown"
    table = RateCounter.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    expired = table.c.window_start <= now - limit.window
    statement = (
        insert(table)
        .values(bucket=limit.bucket, key=key, window_start=now, hits=1)
        .on_conflict_do_update(
            index_elements=[table.c.bucket, table.c.key],
            set_={
                "hits": case((expired, 1), else_=table.c.hits + 1),
                "window_start": case((expired, now), else_=table.c.window_start),
            },
        )
        .returning(table.c.hits, table.c.window_start)
    )
    hits, started = session.execute(statement).one()
    session.commit()
    if hits > limit.count:
        retry_after = max(1, int(-(-(started + limit.window - now).total_seconds() // 1)))
        raise Throttled(
            f"{limit.message} Try again in {_wait_words(retry_after)}.", retry_after=retry_after
        )


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Forget counters whose window ended long ago (housekeeping; windows are at most an
    hour, so a day-old counter can only restart at 1)."""
    now = now or clock.now()
    result = session.exec(
        delete(RateCounter).where(col(RateCounter.window_start) < now - PRUNE_AFTER)
    )
    session.commit()
    return int(result.rowcount or 0)
