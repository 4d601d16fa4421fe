"""The sidebar's cost: SQL statements and time of ``list_conversations`` for one busy user.

One user with N friends and a conversation with each (every conversation has a few messages:
read, unread, one expired, one deleted), rows written directly for speed. Prints how many
statements one call sends (counted with a ``before_cursor_execute`` listener) and its time
over several calls; no assertion on time (``tests/services/test_conversations.py`` checks
that the count does not grow).

Run: .venv/bin/python -m bench.sidebar_queries [--conversations 1000] [--calls 10]
     [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime, timedelta

os.environ.setdefault("IRIS_JWT_SECRET", "bench-secret-" + "x" * 40)

import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlmodel import Session  # noqa: E402

from bench.common import fmt, percentiles, scratch_database  # noqa: E402
from iris_reflex import clock  # noqa: E402
from iris_reflex.db import engine_for  # noqa: E402
from iris_reflex.models import Conversation, Friendship, Message, User  # noqa: E402
from iris_reflex.services import conversations  # noqa: E402
from iris_reflex.settings import get_settings  # noqa: E402


def _message(
    conv: int, sender: int, recipient: int, at: datetime, body: str, **extra: object
) -> dict[str, object]:
    row: dict[str, object] = {
        "conversation_id": conv,
        "sender_id": sender,
        "recipient_id": recipient,
        "kind": "text",
        "body": body,
        "created_at": at,
        "read_at": None,
        "expires_at": None,
        "deleted_at": None,
    }
    return row | extra


def _populate(db: Session, n: int) -> int:
    """``ada`` with ``n`` friends, a conversation and five messages each; returns ada's id."""
    now = clock.now()
    db.execute(
        sa.insert(User),
        [
            {"username": name, "username_key": name, "password_hash": "x", "created_at": now}
            for name in ["ada", *(f"friend{i:05d}" for i in range(n))]
        ],
    )
    ids = dict(db.execute(sa.select(User.username, User.id)).all())
    ada = ids.pop("ada")
    friends = sorted(ids.values())
    db.execute(
        sa.insert(Friendship),
        [
            {
                "user_low_id": min(ada, f),
                "user_high_id": max(ada, f),
                "requester_id": ada,
                "status": "accepted",
                "created_at": now,
                "accepted_at": now,
            }
            for f in friends
        ],
    )
    db.execute(
        sa.insert(Conversation),
        [
            {"user_low_id": min(ada, f), "user_high_id": max(ada, f), "created_at": now}
            for f in friends
        ],
    )
    conv_of = {
        (low if high == ada else high): cid
        for cid, low, high in db.execute(
            sa.select(Conversation.id, Conversation.user_low_id, Conversation.user_high_id)
        )
    }
    rows = []
    for i, friend in enumerate(friends):
        conv, start, body = conv_of[friend], now - timedelta(minutes=n - i), f"message {i}"
        rows += [
            _message(conv, ada, friend, start + timedelta(seconds=1), body, read_at=now),
            _message(conv, friend, ada, start + timedelta(seconds=2), body, read_at=now),
            _message(conv, friend, ada, start + timedelta(seconds=3), body),
            _message(conv, friend, ada, start + timedelta(seconds=4), body, expires_at=now),
            _message(conv, ada, friend, start + timedelta(seconds=5), body, deleted_at=now),
        ]
    for start in range(0, len(rows), 5000):
        db.execute(sa.insert(Message), rows[start : start + 5000])
    db.commit()
    return ada


def measure(url: str, n: int, calls: int) -> None:
    engine = engine_for(url)
    with Session(engine) as db:
        ada = _populate(db, n)
    statements = 0

    def count(*_args: object) -> None:
        nonlocal statements
        statements += 1

    samples: list[float] = []
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(calls):
            statements = 0
            with Session(engine, expire_on_commit=False) as db:
                started = time.perf_counter()
                rows = conversations.list_conversations(db, actor_id=ada)
                samples.append((time.perf_counter() - started) * 1000)
            assert len(rows) == n
    finally:
        event.remove(engine, "before_cursor_execute", count)
    print(f"  list_conversations, {n:,} conversations: {statements} SQL statements per call")
    print(f"  time over {calls} calls: {fmt(percentiles(samples))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    for kind in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        print(f"[{kind}]")
        with scratch_database(kind) as url:
            get_settings().database_url = url
            measure(url, args.conversations, args.calls)


if __name__ == "__main__":
    main()
