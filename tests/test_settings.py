"""Secrets come from the environment, with a generated default only for local use."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from reflex.config import get_config

from iris_reflex import startup
from iris_reflex.settings import Settings, get_settings


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


def test_default_origins_are_this_machines_frontend(monkeypatch):
    monkeypatch.delenv("IRIS_ALLOWED_ORIGINS", raising=False)
    monkeypatch.delenv("REFLEX_DEPLOY_URL", raising=False)
    monkeypatch.delenv("REFLEX_FRONTEND_PORT", raising=False)
    assert Settings().origins() == ("http://localhost:3000", "http://127.0.0.1:3000")
    monkeypatch.setenv("REFLEX_FRONTEND_PORT", "3100")
    monkeypatch.setenv("REFLEX_DEPLOY_URL", "https://chat.example/")
    assert Settings().origins() == (
        "http://localhost:3100",
        "http://127.0.0.1:3100",
        "https://chat.example",
    )


def test_listed_origins_replace_the_defaults(monkeypatch):
    monkeypatch.setenv("IRIS_ALLOWED_ORIGINS", "https://chat.example,https://app.example:8443")
    settings = Settings()
    assert settings.origins() == ("https://chat.example", "https://app.example:8443")
    assert settings.origin_allowed("https://app.example:8443")
    for origin in ("http://localhost:3000", "https://chat.example.evil", "null", "", None):
        assert not settings.origin_allowed(origin)


@pytest.mark.parametrize("value", ["*", "chat.example", "https://chat.example/path", "ftp://x"])
def test_anything_but_an_origin_is_refused(monkeypatch, value):
    monkeypatch.setenv("IRIS_ALLOWED_ORIGINS", value)
    with pytest.raises(ValueError, match="origin"):
        Settings().origins()


def test_the_app_accepts_only_its_own_origins():
    """rxconfig hands Reflex (socket.io handshake, CORS) exactly the allowed origins."""
    assert startup.origin_policy_problem() is None
    assert tuple(get_config().cors_allowed_origins) == get_settings().origins()


def test_workers_starting_together_agree_on_one_whole_secret(tmp_path):
    secret_file = tmp_path / "secret"
    start = threading.Barrier(8)

    def resolve(_: int) -> str:
        start.wait()
        return Settings(jwt_secret="", jwt_secret_file=secret_file).resolved_jwt_secret()

    with ThreadPoolExecutor(max_workers=8) as pool:
        secrets = set(pool.map(resolve, range(8)))
    assert len(secrets) == 1
    assert len(secrets.pop()) >= 48
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]  # no temporary file left


@pytest.mark.parametrize("origins", [("*",), (), ("http://localhost:3000", "*")])
def test_start_up_refuses_to_accept_every_origin(monkeypatch, tmp_path, origins):
    """python-engineio accepts any Origin under "*" and checks nothing under an empty list."""
    monkeypatch.setattr(get_config(), "cors_allowed_origins", origins)
    assert "every origin" in (startup.origin_policy_problem() or "")
    with pytest.raises(RuntimeError, match="IRIS_ALLOWED_ORIGINS"):
        startup.check_database()
