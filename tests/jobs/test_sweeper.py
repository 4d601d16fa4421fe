"""The scheduled sweep with real APScheduler and real time (short timers), on both databases."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from iris_reflex import clock, metrics
from iris_reflex.db import engine_for
from iris_reflex.jobs import sweeper
from iris_reflex.models import Attachment, LoginFailure, Message, UserSession
from iris_reflex.services import friend_requests, passwords, sending, storage, uploads, users
from iris_reflex.settings import get_settings


@pytest.fixture(autouse=True)
def _app_database(database_url, session, monkeypatch, tmp_path):
    monkeypatch.setattr(get_settings(), "database_url", database_url)
    monkeypatch.setattr(get_settings(), "upload_dir", tmp_path / "uploads")
    monkeypatch.setattr(passwords, "hash_password", lambda _p: "$argon2id$test")


def _friends(session) -> tuple[int, int]:
    ada = users.check_register(session, username="Ada", password="correct horse", ip="192.0.2.1")
    bob = users.check_register(session, username="Bob", password="correct horse", ip="192.0.2.1")
    sent = friend_requests.send_request(session, actor_id=ada.id, username="Bob")
    friend_requests.accept_request(session, actor_id=bob.id, request_id=sent.request_id)
    return ada.id, bob.id


def _count(session) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(Message)).one()


def test_sweep_waits_for_the_lock_holder_then_deletes(session, database_url, frozen_clock):
    ada, _ = _friends(session)
    sending.check_send_message(session, actor_id=ada, username="Bob", body="x", timer_seconds=5)
    frozen_clock.advance(seconds=5)
    engine = engine_for(database_url)
    if engine.dialect.name == "postgresql":
        other = engine.connect()
        assert other.execute(
            sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": sweeper.ADVISORY_LOCK_KEY}
        ).scalar()

        def release() -> None:
            other.execute(
                sa.text("SELECT pg_advisory_unlock(:k)"), {"k": sweeper.ADVISORY_LOCK_KEY}
            )
            other.close()

    else:
        handle = Path(f"{engine.url.database}.sweep.lock").open("a")
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        release = handle.close

    vanished, retry_at = sweeper.sweep_once()
    assert vanished == []
    assert retry_at is not None and retry_at > clock.now()
    assert _count(session) == 1
    release()

    vanished, upcoming = sweeper.sweep_once()
    assert [v.sender_id for v in vanished] == [ada]
    assert upcoming is None
    assert _count(session) == 0


def test_scheduler_deletes_a_timed_message_at_its_deadline_in_real_time(session):
    ada, _ = _friends(session)

    async def scenario() -> float:
        task = asyncio.create_task(sweeper.run())
        try:
            deadline = time.monotonic() + 10
            while sweeper._scheduler is None:  # wait for start-up
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            sent = sending.check_send_message(
                session, actor_id=ada, username="Bob", body="gone soon", timer_seconds=5
            )
            sweeper.wake_at(sent.message.expires_at)
            due = sent.message.expires_at.timestamp()
            while _count(session) and time.monotonic() < deadline + 10:
                await asyncio.sleep(0.05)
            return time.time() - due
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    lag = asyncio.run(scenario())
    assert _count(session) == 0
    # Deleted by the precise wake-up, not the 15-second catch-up (and never before the deadline).
    assert 0 <= lag < sweeper.CATCH_UP_SECONDS


def test_start_up_sweeps_deadlines_that_passed_while_down(session, frozen_clock):
    ada, _ = _friends(session)
    for seconds in (5, 60, 3600, 3 * 3600):
        sending.check_send_message(
            session, actor_id=ada, username="Bob", body=f"{seconds}", timer_seconds=seconds
        )
    sending.check_send_message(session, actor_id=ada, username="Bob", body="keep")
    frozen_clock.advance(hours=2)  # "the app was down"

    async def start_then_stop() -> None:
        task = asyncio.create_task(sweeper.run())
        deadline = time.monotonic() + 10
        while _count(session) > 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(start_then_stop())
    session.expire_all()
    assert sorted(m.body for m in session.exec(select(Message)).all()) == ["10800", "keep"]


def test_the_catch_up_sweep_clears_crashed_and_abandoned_uploads(session, frozen_clock, tmp_path):
    """A crash mid-upload (a partial ``.incoming`` file), an upload never sent, and a file
    whose row was never written: the catch-up run removes all three once they are old."""
    ada, _ = _friends(session)
    partial = storage.incoming_path()
    partial.write_bytes(b"half an upl")
    unsent_path = storage.incoming_path()
    unsent_path.write_bytes(b"never sent")
    uploads.store_upload(session, actor_id=ada, source=unsent_path, name="u.txt")
    orphan = storage.write_bytes(storage.new_key(), b"no row")
    kept_path = storage.incoming_path()
    kept_path.write_bytes(b"sent")
    kept = uploads.store_upload(session, actor_id=ada, source=kept_path, name="k.txt")
    sending.check_send_message(
        session, actor_id=ada, username="Bob", body="with file", attachment_ids=[kept.id]
    )
    # Two days pass; files on disk get old too.
    frozen_clock.advance(days=2)
    old = (frozen_clock() - sweeper.ORPHAN_AGE).timestamp() - 60
    for path in (partial, orphan):
        os.utime(path, (old, old))

    sweeper.sweep_once(with_orphans=True)

    session.expire_all()
    assert [a.id for a in session.exec(select(Attachment)).all()] == [kept.id]
    left = sorted(p for p in (tmp_path / "uploads").rglob("*") if p.is_file())
    [kept_row] = session.exec(select(Attachment)).all()
    assert left == [storage.path_for(kept_row.storage_key)]


def test_the_catch_up_run_prunes_old_login_failures_and_ended_sessions(session, frozen_clock):
    """``auth.prune`` is scheduled: the catch-up job (every CATCH_UP_SECONDS) runs it, so
    login failures and expired sessions do not pile up for ever."""
    ada = users.check_register(session, username="Ada", password="correct horse", ip="192.0.2.1")
    now = frozen_clock()
    session.add(LoginFailure(username_key="ada", ip="198.51.100.1", failed_at=now))
    session.add(
        UserSession(id="old", user_id=ada.id, created_at=now, expires_at=now + timedelta(days=1))
    )
    session.add(
        UserSession(id="live", user_id=ada.id, created_at=now, expires_at=now + timedelta(days=9))
    )
    session.commit()
    frozen_clock.advance(days=2)

    async def catch_up_job() -> dict[str, object]:
        task = asyncio.create_task(sweeper.run())
        try:
            deadline = time.monotonic() + 10
            while sweeper._scheduler is None:  # wait for start-up
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            job = sweeper._scheduler.get_job("sweep-catch-up")
            assert job is not None
            return dict(job.kwargs)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    assert asyncio.run(catch_up_job()) == {"with_orphans": True}
    sweeper.sweep_once(with_orphans=True)  # what that job runs

    session.expire_all()
    assert session.exec(select(func.count()).select_from(LoginFailure)).one() == 0
    assert [s.id for s in session.exec(select(UserSession)).all()] == ["live"]


def test_a_sweep_counts_what_it_deleted_and_how_late(session, frozen_clock):
    ada, _ = _friends(session)
    sending.check_send_message(session, actor_id=ada, username="Bob", body="gone", timer_seconds=5)

    def sample(name: str, **labels: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, labels) or 0.0

    before = {
        "swept": sample("iris_swept_messages_total"),
        "lags": sample("iris_sweep_lag_seconds_count"),
        "le1": sample("iris_sweep_lag_seconds_bucket", le="1.0"),
        "le2.5": sample("iris_sweep_lag_seconds_bucket", le="2.5"),
    }
    frozen_clock.advance(seconds=7)  # swept two seconds after its deadline

    sweeper.sweep_once()

    assert sample("iris_swept_messages_total") == before["swept"] + 1
    assert sample("iris_sweep_lag_seconds_count") == before["lags"] + 1
    assert sample("iris_sweep_lag_seconds_bucket", le="1.0") == before["le1"]
    assert sample("iris_sweep_lag_seconds_bucket", le="2.5") == before["le2.5"] + 1


def test_a_swept_message_leaves_no_copy_in_the_database_files(session, database_url, frozen_clock):
    """SQLite: the text is zeroed in the file (secure_delete) and the write-ahead log, which
    held the page as it was when the message was sent, is checkpointed away. PostgreSQL: the
    catch-up run vacuums the message tables (dead rows stay in pages until then)."""
    ada, _ = _friends(session)
    secret = "sealed-words-" + os.urandom(6).hex()
    sending.check_send_message(session, actor_id=ada, username="Bob", body=secret, timer_seconds=5)
    frozen_clock.advance(seconds=6)
    monkey_last = sweeper._last_vacuum
    sweeper._last_vacuum = float("-inf")
    try:
        vanished, _ = sweeper.sweep_once(with_orphans=True)
    finally:
        sweeper._last_vacuum = max(sweeper._last_vacuum, monkey_last)
    assert len(vanished) == 1
    engine = engine_for(database_url)
    if engine.dialect.name == "sqlite":
        session.close()
        files = [Path(engine.url.database or ""), Path(f"{engine.url.database}-wal")]
        seen = [f.name for f in files if f.exists() and secret.encode() in f.read_bytes()]
        assert seen == []
    else:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            vacuumed = connection.execute(
                sa.text("SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'messages'")
            ).scalar()
        assert vacuumed is not None
