"""Files Iris creates are private from the start: folders 0700, files 0600, whatever the
process umask (here the usual 022, which gives 0644 files and 0755 folders to anything that
does not say otherwise). Another local user must never read a message, a picture or a key."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from iris_reflex.db import engine_for
from iris_reflex.jobs import sweeper
from iris_reflex.services import storage
from iris_reflex.settings import Settings, get_settings
from tests import media_samples
from tests.services.builders import register
from tests.services.files import upload

pytestmark = pytest.mark.usefixtures("cheap_hash", "uploads")


@pytest.fixture(autouse=True)
def everyday_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_private_tree(root: Path) -> None:
    assert mode(root) == 0o700, root
    entries = list(root.rglob("*"))
    assert entries
    for entry in entries:
        assert mode(entry) == (0o700 if entry.is_dir() else 0o600), entry


async def _chunks() -> AsyncIterator[bytes]:
    yield b"voice note bytes"


def test_stored_received_and_cleaned_files_are_private(session, uploads):
    (ada,) = register(session, "ada")
    storage.write_bytes(storage.new_key(), b"raw")
    received, _ = asyncio.run(storage.receive(_chunks(), limit=1024))
    assert mode(received) == 0o600
    picture = upload(session, ada, media_samples.jpeg_with_gps(), "p.jpg")  # re-encoded
    assert picture.has_thumbnail
    upload(session, ada, b"%PDF-1.4 notes", "n.pdf")
    assert_private_tree(uploads)


def test_the_sqlite_database_and_its_wal_are_private(tmp_path):
    path = tmp_path / "fresh.db"
    engine = engine_for(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x TEXT)"))
        conn.execute(sa.text("INSERT INTO t VALUES ('a message')"))
        assert Path(f"{path}-wal").exists()
        for suffix in ("", "-wal", "-shm"):
            assert mode(Path(f"{path}{suffix}")) == 0o600, suffix
    engine.dispose()


def test_the_sweep_lock_beside_sqlite_is_private(tmp_path, monkeypatch):
    monkeypatch.setattr(get_settings(), "database_url", f"sqlite:///{tmp_path / 'iris.db'}")
    with sweeper.sweeper_lock() as mine:
        assert mine
    assert mode(tmp_path / "iris.db.sweep.lock") == 0o600


def test_the_generated_secret_is_born_private(tmp_path):
    """Created 0600, not made private afterwards (a chmod after writing leaves a moment in
    which any local user can read the key that signs every session)."""
    secret_file = tmp_path / "secret"
    chmods: list[str] = []

    def audit(event: str, args: tuple[object, ...]) -> None:
        if event == "os.chmod" and str(args[0]) == str(secret_file):
            chmods.append(event)

    sys.addaudithook(audit)  # hooks cannot be removed; this one only watches this path
    Settings(jwt_secret="", jwt_secret_file=secret_file).resolved_jwt_secret()
    assert mode(secret_file) == 0o600
    assert chmods == []
