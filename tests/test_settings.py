"""Secrets come from the environment, with a generated default only for local use."""

from __future__ import annotations

import pytest

from iris_reflex.settings import Settings


def test_local_secret_is_generated_once_and_kept(tmp_path):
    secret_file = tmp_path / "secret"
    first = Settings(jwt_secret="", jwt_secret_file=secret_file).resolved_jwt_secret()
    second = Settings(jwt_secret="", jwt_secret_file=secret_file).resolved_jwt_secret()
    assert first == second
    assert len(first) >= 48
    assert secret_file.stat().st_mode & 0o077 == 0


def test_production_refuses_a_generated_secret(tmp_path):
    settings = Settings(env="production", jwt_secret="", jwt_secret_file=tmp_path / "s")
    with pytest.raises(RuntimeError, match="IRIS_JWT_SECRET is not set"):
        settings.resolved_jwt_secret()
    assert not (tmp_path / "s").exists()


def test_short_secret_is_refused():
    with pytest.raises(RuntimeError, match="at least 32"):
        Settings(jwt_secret="too-short").resolved_jwt_secret()


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("IRIS_MAX_UPLOAD_MB", "7")
    monkeypatch.setenv("IRIS_DATABASE_URL", "postgresql://postgres@127.0.0.1/iris")
    settings = Settings()
    assert settings.max_upload_mb == 7
    assert not settings.is_sqlite


def test_the_app_never_enables_reflexs_public_upload_route():
    """Importing every page must not turn on ``/_upload`` (which serves its folder to anyone),
    and Reflex's folder is not Iris's."""
    import os

    import iris_reflex.iris_reflex  # noqa: F401 (compiles nothing, but builds every page)
    from iris_reflex.settings import get_settings
    from iris_reflex.startup import public_upload_route_exists

    assert public_upload_route_exists() is False
    import rxconfig  # noqa: F401 (points Reflex's folder away from Iris's default one)
    from iris_reflex.settings import PROJECT_ROOT

    reflex_folder = os.path.abspath(os.environ["REFLEX_UPLOADED_FILES_DIR"])
    for iris_folder in (get_settings().upload_dir, PROJECT_ROOT / "uploaded_files"):
        assert reflex_folder != os.path.abspath(iris_folder)
