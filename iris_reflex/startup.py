"""Start-up checks run in the app's lifespan: refuse to serve an unmigrated database, private
files from a public route, or sessions to every origin."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from reflex.config import get_config
from reflex.utils import prerequisites
from reflex_base import constants
from reflex_components_core.core.upload import Upload

from iris_reflex.db import get_engine
from iris_reflex.services import storage
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


def origin_policy_problem() -> str | None:
    """Why Reflex would accept a foreign origin, or ``None`` when it accepts only ours.

    python-engineio checks a handshake's ``Origin`` only for the websocket transport (Reflex
    passes ``[]`` otherwise) and treats an empty list as "check nothing"; ``*`` accepts all.
    """
    config = get_config()
    origins = tuple(config.cors_allowed_origins)
    if not origins or "*" in origins:
        return f"cors_allowed_origins is {list(origins)!r}: every origin would be accepted."
    if config.transport != "websocket":
        return f"transport {config.transport!r} skips the websocket's Origin check."
    if set(origins) != set(get_settings().origins()):
        return (
            f"Reflex's cors_allowed_origins {list(origins)!r} differ from IRIS_ALLOWED_ORIGINS "
            f"{list(get_settings().origins())!r}."
        )
    return None


def private_state_folder() -> Path | None:
    """In Reflex's disk mode (``REFLEX_STATE_MANAGER_MODE=disk``), its state folder made
    private: 0700, each file 0600, also when an earlier run left it readable by others.

    What the files hold is sealed (``state.sealed``); who may list them, and see which tabs
    exist and when they last changed, is the folder's mode. New files are born 0600 under
    the umask ``rxconfig.py`` sets. ``None`` in the other modes (memory keeps nothing on
    disk; Redis keeps it in Redis).
    """
    if get_config().state_manager_mode != constants.StateManagerMode.DISK:
        return None
    folder = storage.private_dir(prerequisites.get_states_dir().absolute())
    folder.chmod(storage.PRIVATE_DIR)
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink():
            path.chmod(storage.PRIVATE_FILE)
    return folder


def check_database() -> None:
    """Fail fast with a clear message instead of serving half a schema, or serving private
    files from a public route."""
    if public_upload_route_exists():
        raise RuntimeError(
            "Reflex's public /_upload route is enabled (a page uses rx.upload, or "
            ".web/backend/upload_is_used exists). Iris serves files only through "
            "/api/attachments; remove the rx.upload use and that marker file."
        )
    if problem := origin_policy_problem():
        raise RuntimeError(f"Refusing to start: {problem} Set IRIS_ALLOWED_ORIGINS.")
    settings = get_settings()
    settings.resolved_jwt_secret()
    # Private from the start (0700); a folder left by an older version is tightened too.
    storage.private_dir(settings.upload_dir).chmod(storage.PRIVATE_DIR)
    private_state_folder()
    pending = pending_migrations()
    if pending:
        raise RuntimeError(
            f"The database is missing migrations {pending}. Run `./iris migrate` "
            "(alembic upgrade head) before starting Iris."
        )
    log.info("Iris database is up to date.")


# Young objects allowed before a collection of the youngest generation (Python's default is
# 700). See ``tune_garbage_collection``.
YOUNG_COLLECTION_EVERY = 10_000


def tune_garbage_collection() -> None:
    """Lifespan task: fewer, cheaper full garbage collections on the live path.

    A full collection walks every object the process tracks with the event loop stopped;
    with 1,000 tabs open one took about 250 ms, and at 100 messages/s one came every 27 s:
    those pauses were the live path's p99 (``bench.load_tabs``). Two changes:

    - start-up's objects (the app's import alone leaves some 200,000: Reflex, SQLAlchemy,
      pydantic, the compiled pages; about 100 ms of every full collection) live as long as
      the process, so they move to the permanent generation once and are never walked again;
    - a young collection runs every ``YOUNG_COLLECTION_EVERY`` new objects instead of 700.
      Every object alive at a middle-generation collection (requests in flight) counts
      towards the next full one, so full collections come far less often: none in 60 s at
      1,000 tabs and 100 messages/s, where one came every 27 s. Cycles still go at the next
      young collection.
    """
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
