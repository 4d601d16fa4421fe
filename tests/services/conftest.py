"""Fixtures shared by the service tests that store files (opt in with ``usefixtures``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iris_reflex.services import passwords
from iris_reflex.settings import get_settings


@pytest.fixture
def cheap_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registration still goes through ``users.check_register``; only argon2 is skipped."""
    monkeypatch.setattr(passwords, "hash_password", lambda _password: "not-a-real-hash")


@pytest.fixture
def uploads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh upload folder for this test."""
    folder = tmp_path / "uploads"
    monkeypatch.setattr(get_settings(), "upload_dir", folder)
    return folder
