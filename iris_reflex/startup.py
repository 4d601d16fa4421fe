"""Start-up checks run in the app's lifespan: refuse to serve an unmigrated database."""

from __future__ import annotations

import logging

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from reflex.utils import prerequisites
from reflex_base import constants
from reflex_components_core.core.upload import Upload

from iris_reflex.db import get_engine
from iris_reflex.settings import PROJECT_ROOT, get_settings

log = logging.getLogger("iris")


def pending_migrations() -> list[str]:
    """Revisions not yet applied to the configured database (empty when up to date)."""
    script = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    with get_engine().connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    heads = set(script.get_heads())
    if current == heads:
        return []
    return [rev.revision for rev in script.walk_revisions() if rev.revision not in current]


def public_upload_route_exists() -> bool:
    """Whether Reflex serves its upload folder at ``/_upload`` (it does once any page uses
    ``rx.upload``, and remembers that in a marker file), which Iris must never do."""
    marker = prerequisites.get_backend_dir() / constants.Dirs.UPLOAD_IS_USED
    return bool(Upload.is_used) or marker.exists()


def check_database() -> None:
    """Fail fast with a clear message instead of serving half a schema, or serving private
    files from a public route."""
    if public_upload_route_exists():
        raise RuntimeError(
            "Reflex's public /_upload route is enabled (a page uses rx.upload, or "
            ".web/backend/upload_is_used exists). Iris serves files only through "
            "/api/attachments; remove the rx.upload use and that marker file."
        )
    settings = get_settings()
    settings.resolved_jwt_secret()
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    pending = pending_migrations()
    if pending:
        raise RuntimeError(
            f"The database is missing migrations {pending}. Run `./iris migrate` "
            "(alembic upgrade head) before starting Iris."
        )
    log.info("Iris database is up to date.")
