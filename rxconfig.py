"""Reflex configuration. Iris's own settings come from ``iris_reflex.settings`` (IRIS_*);
Reflex's own fields can still be overridden with REFLEX_<FIELD> (ports, api_url, ...)."""

import os

import reflex as rx

from iris_reflex.settings import PROJECT_ROOT, get_settings

_settings = get_settings()

# Files this process creates are private from the start (0700 folders, 0600 files), also when
# Reflex is started without ./iris (which sets the same umask): the SQLite database, Reflex's
# state folder in disk mode, uploads. Iris's own files set their modes explicitly as well.
os.umask(0o077)

# Reflex's own upload folder is public (served at /_upload once rx.upload is used) and defaults
# to ./uploaded_files, which is also where Iris keeps private media. Iris never uses rx.upload,
# and in case it ever did, Reflex's folder is pointed elsewhere; startup also refuses to run
# if the route exists (iris_reflex/startup.py).
os.environ.setdefault("REFLEX_UPLOADED_FILES_DIR", str(PROJECT_ROOT / ".web-public-uploads"))

# `reflex run` in development (`./iris dev`) restarts the backend when a watched file changes.
# By default Reflex watches every top-level entry of the project that exists at start-up, minus
# hidden directories and `uploaded_files` (reflex/utils/exec.py, get_reload_paths), and ignores
# only some extensions (`.db`, not `.db-wal`/`.db-shm`). The default SQLite database lives here
# too, so every write (the worker's own start-up included) restarted the worker, endlessly.
# Watch the code instead: a change to data, tests or docs never needs a restart.
os.environ.setdefault(
    "REFLEX_HOT_RELOAD_OVERRIDE_PATHS",
    ":".join(str(PROJECT_ROOT / name) for name in ("iris_reflex", "rxconfig.py", "assets")),
)

# One origin only: the websocket handshake (python-socketio checks ``Origin`` against this
# list before any handler runs) and CORS on every HTTP route (Reflex adds Starlette's
# CORSMiddleware with credentials, which reflected any Origin under the default "*") accept
# exactly this deployment's own origins (IRIS_ALLOWED_ORIGINS, iris_reflex/settings.py).
# Reflex lets REFLEX_CORS_ALLOWED_ORIGINS override the field below, so it is pinned to the
# same list; start-up refuses "*" or an empty list (which python-engineio treats as "check
# nothing").
_origins = list(_settings.origins())
os.environ["REFLEX_CORS_ALLOWED_ORIGINS"] = ",".join(_origins)

# With several workers (Redis), a tab's stored state expires IRIS_TAB_STATE_TTL (15 min)
# after its last write or renewal instead of Reflex's hour: each worker renews the state keys
# of the tabs connected to it every third of that (iris_reflex/live/keepalive.py), so only a
# closed tab's state expires. Memory and disk mode keep Reflex's hour: they purge a state
# that long after its last *write*, and nothing renews them. REFLEX_REDIS_TOKEN_EXPIRATION,
# if set, still wins (Reflex reads it after this file); the keep-alive follows whatever the
# state manager uses.
_state_mode = os.environ.get("REFLEX_STATE_MANAGER_MODE") or (
    "redis" if _settings.redis_url else "memory"
)
_expiry = {"redis_token_expiration": _settings.tab_state_ttl} if _state_mode == "redis" else {}

# With several workers, a tab's states stay in the memory of the worker holding its socket
# between events (Reflex's opportunistic lock: it keeps the tab's Redis lock and writes the
# states back when its hold ends, IRIS_TAB_HOLD_SECONDS, or another worker asks), instead of a
# Redis read and write per event. Every change for a tab is applied by that worker
# (iris_reflex/live/relay.py), so nobody else asks. REFLEX_OPLOCK_ENABLED=false turns it off.
if _state_mode == "redis":
    os.environ.setdefault("REFLEX_OPLOCK_ENABLED", "true")

# Tab state: with one worker, in memory. Reflex's default "disk" mode pickles every tab's
# state to .states/ two seconds after each change (message text and the session cookie
# included) and reloads it per event; Iris's state is only a view that on_load rebuilds, so
# memory is faster and keeps nothing on disk. Several workers share it through Redis.
config = rx.Config(
    app_name="iris_reflex",
    db_url=_settings.database_url,
    redis_url=_settings.redis_url or None,
    state_manager_mode="redis" if _settings.redis_url else "memory",
    cors_allowed_origins=_origins,
    **_expiry,
    # Loopback unless IRIS_HOST says otherwise (Reflex's own default is 0.0.0.0).
    backend_host=_settings.host,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(
                accent_color="iris", gray_color="slate", radius="large", appearance="inherit"
            )
        ),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
