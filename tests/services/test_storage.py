"""Stored files: keys that cannot leave the folder, listing and deleting by key, and
receiving an upload (partial files never survive)."""

from __future__ import annotations

import asyncio
import os

import pytest

from iris_reflex.errors import TooLarge
from iris_reflex.services import storage
from tests.services.files import stored_files

pytestmark = pytest.mark.usefixtures("uploads")


@pytest.mark.parametrize(
    "key", ["", ".", "..", "../etc", "..%2f", "a/b", "/etc/passwd", "a\\b", "\\x", "ab\x00c"]
)
def test_path_for_refuses_keys_that_could_leave_the_upload_folder(uploads, key):
    with pytest.raises(ValueError):
        storage.path_for(key)
    with pytest.raises(ValueError):
        storage.write_bytes(key, b"x")
    assert storage.delete_keys([key]) == 0


def test_new_keys_are_random_url_safe_names_stored_two_levels_deep(uploads):
    keys = {storage.new_key() for _ in range(100)}

    assert len(keys) == 100
    for key in keys:
        assert len(key) == 32
        assert all(c.isalnum() or c in "-_" for c in key)
        assert storage.path_for(key) == uploads / key[:2] / key


def test_stored_files_are_listed_and_deleted_by_key(uploads):
    first, second = storage.new_key(), storage.new_key()
    storage.write_bytes(first, b"one")
    path = storage.write_bytes(second, b"two")
    os.utime(path, (1_000_000, 1_000_000))

    listed = dict(storage.iter_stored_keys())
    assert set(listed) == {first, second}
    assert listed[second] == 1_000_000

    assert storage.delete_keys([first, None, first, "", storage.new_key()]) == 1
    assert dict(storage.iter_stored_keys()).keys() == {second}
    assert storage.delete_keys([first, second]) == 1
    assert list(storage.iter_stored_keys()) == []


def test_a_crashed_upload_leaves_no_partial_file_after_the_sweep(uploads):
    partial = storage.incoming_path()
    partial.write_bytes(b"half a file")
    assert storage.delete_stale_incoming(older_than=partial.stat().st_mtime) == 0
    assert storage.delete_stale_incoming(older_than=partial.stat().st_mtime + 1) == 1
    assert stored_files(uploads) == []


async def _chunks(*parts: bytes):  # type: ignore[no-untyped-def]
    for part in parts:
        yield part


def test_receiving_stops_at_the_limit_and_deletes_the_partial_file(uploads):
    with pytest.raises(TooLarge):
        asyncio.run(storage.receive(_chunks(b"a" * 600, b"b" * 600), limit=1000))
    assert stored_files(uploads) == []
    path, size = asyncio.run(storage.receive(_chunks(b"a" * 600, b"b" * 400), limit=1000))
    assert size == 1000 and path.read_bytes() == b"a" * 600 + b"b" * 400


def test_a_stored_file_is_found_by_key_until_it_is_deleted(uploads):
    key = storage.new_key()
    assert storage.stored_file(key) is None
    path = storage.write_bytes(key, b"abc")
    assert storage.stored_file(key) == path
    assert storage.size_of(path) == 3
    storage.discard([path, path])
    assert storage.stored_file(key) is None
