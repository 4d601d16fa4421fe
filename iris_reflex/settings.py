"""Every setting Iris reads, in one place, from the environment.

Each variable is documented in the README's configuration table. The JWT secret is the one
setting with a generated default: for local use a random secret is created once and kept in
an ignored file, so sessions survive restarts; outside development a missing secret is an
error, never a silent default.
"""

from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Typed settings; field ``foo_bar`` is read from ``IRIS_FOO_BAR``."""

    model_config = SettingsConfigDict(env_prefix="IRIS_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'iris.db'}"
    jwt_secret: str = ""
    jwt_secret_file: Path = PROJECT_ROOT / ".iris-secret"
    jwt_lifetime_minutes: int = Field(default=7 * 24 * 60, ge=5)
    cookie_secure: bool = False
    upload_dir: Path = PROJECT_ROOT / "uploaded_files"
    max_upload_mb: int = Field(default=50, ge=1)
    max_files_per_message: int = Field(default=10, ge=1)
    user_quota_mb: int = Field(default=1024, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=30, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    redis_url: str = ""
    # Iris's own Redis keys (the user -> tabs registry, the workers' roll) start with this,
    # so two installations, or test runs, can share one Redis database.
    redis_prefix: str = "iris:"
    metrics_token: str = ""  # who may read /api/metrics; unset, the endpoint answers 404

    @property
    def is_sqlite(self) -> bool:
        """Whether the configured database is the embedded SQLite default."""
        return self.database_url.startswith("sqlite")

    def resolved_jwt_secret(self) -> str:
        """The secret that signs tokens: from the environment, else the local file.

        Raises:
            RuntimeError: in production without ``IRIS_JWT_SECRET``.
        """
        if self.jwt_secret:
            if len(self.jwt_secret) < 32:
                raise RuntimeError("IRIS_JWT_SECRET must be at least 32 characters long.")
            return self.jwt_secret
        if self.env == "production":
            raise RuntimeError(
                "IRIS_JWT_SECRET is not set. Production refuses a generated secret: "
                "set it to a long random value (python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')."
            )
        path = self.jwt_secret_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two workers starting together must not write two different secrets.
            try:
                with path.open("x", encoding="utf-8") as handle:
                    handle.write(secrets.token_urlsafe(48))
                path.chmod(0o600)
            except FileExistsError:
                pass
        return path.read_text(encoding="utf-8").strip()


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
