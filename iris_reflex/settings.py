"""Every setting Iris reads, in one place, from the environment.

Each variable is documented in the README's configuration table. The JWT secret is the one
setting with a generated default: for local use a random secret is created once and kept in
an ignored file, so sessions survive restarts; outside development a missing secret is an
error, never a silent default.
"""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` as a browser sends it in ``Origin`` (lower case, no path, no
    default port); ``ValueError`` for anything that is not one http(s) origin (``*`` included).
    """
    parts = urlsplit(value.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host or parts.username or parts.password:
        raise ValueError(f"Not an http(s) origin: {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"An origin has no path: {value!r}")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    return f"{scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS[scheme] else "")


class Settings(BaseSettings):
    """Typed settings; field ``foo_bar`` is read from ``IRIS_FOO_BAR``."""

    model_config = SettingsConfigDict(env_prefix="IRIS_", extra="ignore")
    _file_secret: str | None = PrivateAttr(default=None)  # ``jwt_secret_file``'s, once read

    env: Literal["development", "production"] = "development"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'iris.db'}"
    # PostgreSQL connections each backend process keeps open (``db.engine_for``); up to 10
    # more are opened under bursts and closed again.
    db_pool_size: int = Field(default=20, ge=1)
    jwt_secret: str = ""
    jwt_secret_file: Path = PROJECT_ROOT / ".iris-secret"
    jwt_lifetime_minutes: int = Field(default=7 * 24 * 60, ge=5)
    cookie_secure: bool = False
    upload_dir: Path = PROJECT_ROOT / "uploaded_files"
    max_upload_mb: int = Field(default=50, ge=1)
    max_files_per_message: int = Field(default=10, ge=1)
    user_quota_mb: int = Field(default=1024, ge=1)
    # Sign-in throttling (services/auth.py): a pair (address, username) slows down first.
    login_free_attempts: int = Field(default=3, ge=1)
    login_base_delay_seconds: int = Field(default=2, ge=1)
    login_max_delay_seconds: int = Field(default=300, ge=1)
    login_max_failures: int = Field(default=10, ge=1)
    login_max_failures_per_ip: int = Field(default=100, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    # Comma-separated addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For
    # is believed; empty: the peer address is the client, whatever the headers say.
    trusted_proxies: str = ""
    # Rate limits (services/limits.py): how many per window, per sender / address / user.
    friend_requests_per_hour: int = Field(default=30, ge=1)
    registrations_per_hour: int = Field(default=20, ge=1)
    searches_per_minute: int = Field(default=60, ge=1)
    # Passkeys (services/passkeys.py): the WebAuthn relying party id (a domain of the allowed
    # origins; empty: the first allowed origin's host that is a name, not an address), and
    # how many passkey sign-in challenges one address may ask for per minute.
    passkey_rp_id: str = ""
    passkey_challenges_per_minute: int = Field(default=30, ge=1)
    # Pictures (services/images.py): the memory one decode may use, and how many decodes
    # one worker runs at once (others wait up to image_wait_seconds, then are refused).
    image_memory_mb: int = Field(default=192, ge=16)
    image_workers: int = Field(default=2, ge=1)
    image_wait_seconds: int = Field(default=30, ge=0)
    redis_url: str = ""
    # Iris's own Redis keys (the user -> tabs registry, the workers' roll) start with this,
    # so two installations, or test runs, can share one Redis database.
    redis_prefix: str = "iris:"
    # With several workers: how long a tab's state stays in Redis after its tab closed (the
    # keep-alive, ``live.keepalive``, renews it every third of this while the tab is open).
    # Reflex's ``redis_token_expiration``, set from this in rxconfig.py.
    tab_state_ttl: int = Field(default=15 * 60, ge=60)
    # With several workers: how long the worker holding a tab's socket keeps the tab's states
    # in memory before writing them back to Redis (Reflex's opportunistic lock; Iris renews
    # the lock of every held tab, ``live.keepalive``, so a hold may outlast the lock's 10 s).
    # Applied in ``state.tabs``. Reflex's own hold is 5 s; with 1,000 tabs most events then
    # found their tab's hold over and paid for a new lock, a read and a write-back of every
    # state. A dying worker's holds cost nothing more: the survivors release its locks
    # (``live.workers``), so its tabs need not wait them out (README, Several workers).
    tab_hold_seconds: float = Field(default=60, gt=0, le=3600)
    metrics_token: str = ""  # who may read /api/metrics; unset, the endpoint answers 404
    # The address the backend listens on: loopback unless a deployment says otherwise.
    host: str = "127.0.0.1"
    # The origins whose pages may use a session (comma-separated); empty: this machine's
    # own frontend (see ``origins``).
    allowed_origins: str = ""

    @property
    def is_sqlite(self) -> bool:
        """Whether the configured database is the embedded SQLite default."""
        return self.database_url.startswith("sqlite")

    def origins(self) -> tuple[str, ...]:
        """Every origin whose pages may open the websocket, read ``/api`` with credentials
        and make cookie-authenticated writes: exactly ``IRIS_ALLOWED_ORIGINS``, else the
        frontend on this machine (``http://localhost:<port>`` and ``http://127.0.0.1:<port>``,
        the port from ``REFLEX_FRONTEND_PORT``, 3000 by default, which ``./iris run`` and
        ``./iris dev`` both serve pages on) plus Reflex's ``REFLEX_DEPLOY_URL`` when set.

        Raises:
            ValueError: a listed value is not an http(s) origin (``*`` included).
        """
        listed = [item for item in self.allowed_origins.split(",") if item.strip()]
        if not listed:
            port = os.environ.get("REFLEX_FRONTEND_PORT", "").strip() or "3000"
            listed = [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
            if deploy_url := os.environ.get("REFLEX_DEPLOY_URL", "").strip():
                listed.append(deploy_url)
        return tuple(dict.fromkeys(normalize_origin(item) for item in listed))

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether a request's ``Origin`` header names one of this deployment's origins."""
        if not origin:
            return False
        try:
            return normalize_origin(origin) in self.origins()
        except ValueError:
            return False

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
        if self._file_secret is not None:
            # Read once: this ran on every token check (1.4 % of a busy worker's samples). A
            # secret changed on disk takes effect at the next start, as the environment's does.
            return self._file_secret
        path = self.jwt_secret_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Born 0600 (a chmod after writing would leave a moment in which any local user
            # could read the key that signs every session), written whole under a temporary
            # name, then linked into place: ``link`` fails if another worker got there first,
            # so two workers starting together agree on one secret and never read half of it.
            temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(secrets.token_urlsafe(48))
                try:
                    os.link(temporary, path)
                except FileExistsError:
                    pass
                except OSError:  # a filesystem without hard links: create it exclusively
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "w", encoding="utf-8") as handle:
                        handle.write(temporary.read_text(encoding="utf-8"))
            except FileExistsError:
                pass
            finally:
                temporary.unlink(missing_ok=True)
        self._file_secret = path.read_text(encoding="utf-8").strip()
        return self._file_secret


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
