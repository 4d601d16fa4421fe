"""Stored files: the only code that touches the upload folder.

Why it is built this way:
- A file's only name on disk is a random key (``new_key``), never anything a user typed, so
  names cannot collide, cannot be guessed and cannot climb out of the folder. ``path_for``
  refuses any key that could (separators, ``..``, empty), whatever its origin.
- Files live under ``upload_dir / key[:2] / key`` so no single directory grows huge.
- Deleting is idempotent: a missing file is not an error, because the expiry sweep deletes
  files *before* rows and retries after a crash, so it may meet a file it already removed.
- Settings are read on every call (not at import), so tests can point ``upload_dir`` at a
  temporary folder.
- Private from the start: folders are created 0700 and every file is created 0600 by this
  module (``_create_private``) before a byte is written, whatever the process umask; no file
  is ever readable by another local user, not even for a moment.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from iris_reflex.errors import TooLarge
from iris_reflex.settings import get_settings

KEY_BYTES = 24
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(folder: Path) -> Path:
    """``folder`` (and missing parents) created 0700; an existing one is left as it is."""
    if not folder.is_dir():
        if not folder.parent.is_dir():
            private_dir(folder.parent)
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            pass
        else:
            folder.chmod(PRIVATE_DIR)  # mkdir's mode is masked by the umask: state it exactly
    return folder


def _create_private(path: Path) -> Path:
    """Create ``path`` as a new empty 0600 file (it must not exist yet)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    return path


def new_key() -> str:
    """A fresh random key: URL-safe base64 (``A-Z a-z 0-9 - _``), no path separators."""
    return secrets.token_urlsafe(KEY_BYTES)


def _root() -> Path:
    return get_settings().upload_dir


def _check_key(key: str) -> None:
    if not key or "/" in key or "\\" in key or ".." in key or "\x00" in key or key.startswith("."):
        raise ValueError(f"Not a storage key: {key!r}")


def path_for(key: str) -> Path:
    """Where the file of ``key`` lives.

    Raises:
        ValueError: the key is empty or could name a path outside its folder.
    """
    _check_key(key)
    return _root() / key[:2] / key


def write_bytes(key: str, data: bytes) -> Path:
    """Store ``data`` under ``key`` (creating folders as needed); returns the path."""
    path = path_for(key)
    private_dir(path.parent)
    with _create_private(path).open("r+b") as handle:
        handle.write(data)
    return path


def delete_keys(keys: Iterable[str | None]) -> int:
    """Delete the files of these keys; returns how many existed.

    ``None``, empty, repeated and missing keys are ignored. A key that ``path_for`` refuses
    cannot name a stored file (nothing can be written under it), so it is skipped too: one
    bad value must never stop the sweep.
    """
    removed = 0
    for key in dict.fromkeys(k for k in keys if k):
        try:
            path = path_for(key)
        except ValueError:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed


def iter_stored_keys() -> Iterator[tuple[str, float]]:
    """Every stored file as ``(key, modification time as a POSIX timestamp)``.

    Only files at their own key's place are listed, so whatever is yielded can be deleted
    with ``delete_keys``; anything else in the folder is not Iris's and is left alone.
    """
    root = _root()
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for entry in sorted(folder.iterdir()):
            key = entry.name
            try:
                if path_for(key) != entry or not entry.is_file() or entry.is_symlink():
                    continue
                mtime = entry.stat().st_mtime
            except (ValueError, FileNotFoundError):
                continue
            yield key, mtime


# ----------------------------------------------------------------------------- uploads
# An upload is written to ``upload_dir/.incoming/<random>.part`` first and only moved to its
# key's place (``adopt``, an atomic rename on the same disk) once it is complete and checked.
# ``iter_stored_keys`` never lists the incoming folder, and the sweep deletes stale ``.part``
# files, so a crash mid-upload leaves nothing behind for long.

INCOMING = ".incoming"
CHUNK_BYTES = 1024 * 1024


def _incoming_dir() -> Path:
    return private_dir(_root() / INCOMING)


def incoming_path() -> Path:
    """A fresh, empty, private (0600) file for what is being received or produced; writers
    open it again (``wb`` keeps its mode)."""
    return _create_private(_incoming_dir() / f"{secrets.token_urlsafe(18)}.part")


def adopt(temporary: Path, key: str) -> Path:
    """Move a completed incoming file to ``key``'s place; returns the new path."""
    path = path_for(key)
    private_dir(path.parent)
    os.replace(temporary, path)
    return path


async def receive(chunks: AsyncIterator[bytes], *, limit: int) -> tuple[Path, int]:
    """Write a stream to a new incoming file, at most ``limit`` bytes; returns (path, size).

    Raises:
        TooLarge: the stream went past ``limit`` (the partial file is deleted first).
    """
    path = incoming_path()
    size = 0
    try:
        with path.open("wb") as handle:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise TooLarge(too_large_message(limit))
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size


def copy_into_incoming(source: BinaryIO, *, limit: int) -> tuple[Path, int]:
    """Copy a file object (a multipart part) to a new incoming file; like ``receive``."""
    path = incoming_path()
    size = 0
    try:
        with path.open("wb") as handle:
            while chunk := source.read(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(too_large_message(limit))
                handle.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size


def limit_bytes() -> int:
    """The configured size limit per file."""
    return get_settings().max_upload_mb * 1024 * 1024


def too_large_message(limit: int) -> str:
    return f"A file can be at most {limit // (1024 * 1024)} MB."


def size_of(path: Path) -> int:
    """The size in bytes of a file being received or stored."""
    return path.stat().st_size


def discard(paths: Iterable[Path]) -> None:
    """Delete these incoming (or produced) files if they still exist: what is left after a
    file was adopted, refused or re-encoded."""
    for path in paths:
        path.unlink(missing_ok=True)


def stored_file(key: str) -> Path | None:
    """The path of ``key``'s file if it is on disk now, else ``None`` (swept meanwhile)."""
    path = path_for(key)
    return path if path.is_file() else None


def delete_stale_incoming(*, older_than: float) -> int:
    """Delete incoming files last written before ``older_than`` (POSIX time): crashed uploads."""
    folder = _root() / INCOMING
    if not folder.is_dir():
        return 0
    removed = 0
    for entry in folder.iterdir():
        try:
            if entry.is_file() and entry.stat().st_mtime < older_than:
                entry.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
