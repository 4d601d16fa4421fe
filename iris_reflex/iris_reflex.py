"""The Reflex app: pages, the FastAPI app it mounts in, start-up checks, and the wiring of
the layers that must not import upward (the live layer's tab driver, the sweeper's
listener)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import reflex as rx

from iris_reflex import cors, logs, startup
from iris_reflex.actions import messages as message_actions
from iris_reflex.api.app import create_api
from iris_reflex.components.brand import CONTRAST_CSS
from iris_reflex.jobs import sweeper
from iris_reflex.live import fanout, keepalive, outbox, presence, push, workers
from iris_reflex.pages.home import home_page
from iris_reflex.pages.login import login_page
from iris_reflex.pages.register import register_page
from iris_reflex.pages.settings import settings_page
from iris_reflex.settings import get_settings
from iris_reflex.state import connections
from iris_reflex.state.auth_forms import AuthFormState
from iris_reflex.state.conversation import ConversationState, MessagesState
from iris_reflex.state.friends import FriendsState
from iris_reflex.state.security import SecurityState
from iris_reflex.state.session import SessionState
from iris_reflex.state.settings import SettingsState
from iris_reflex.state.sidebar import SidebarState
from iris_reflex.state.tabs import ReflexTabs

# Before anything can log a client's request: no cookie, token or payload in any log line.
logs.install()
# Before the app builds its CORS layers: nothing at all for another origin.
cors.install(rx.App)

app = rx.App(
    api_transformer=create_api(),
    # Top centre: bottom-right toasts would cover the composer's send button.
    toaster=rx.toast.provider(position="top-center", close_button=True),
    head_components=[
        rx.el.meta(name="description", content="Iris: private messaging."),
        rx.el.style(CONTRAST_CSS),
    ],
)


def _wrap_socket_namespace() -> None:
    """Two hooks Reflex 0.10 does not offer, added around its socket namespace's own methods
    (python-socketio and Reflex look them up on the instance); Reflex's work runs unchanged.

    - The session cookie is taken out of the handshake headers Reflex copies into every
      tab's state (and, with several workers, pickles into Redis): ``state.connections``
      holds it for the life of the socket.
    - A closing socket tells presence (a user's last tab going means "last seen"), and
      its tab's stored state keys are renewed together one last time, so they all expire
      at the same moment (a tab coming back within the expiry finds all of its state,
      after it none of it).
    """
    namespace = app.event_namespace
    if namespace is None:
        return
    reflex_router_data = namespace._build_static_router_data
    reflex_on_disconnect = namespace.on_disconnect

    def build_static_router_data(sid: str, environ: dict[str, Any]) -> dict[str, Any]:
        return connections.without_session_cookie(sid, reflex_router_data(sid, environ))

    def on_disconnect(sid: str) -> asyncio.Task[Any] | None:
        token = namespace.sid_to_token.get(sid)
        result = reflex_on_disconnect(sid)
        connections.forget(sid)
        if token is not None:
            loop = asyncio.get_running_loop()
            for work in (presence.tab_closed(token), keepalive.renew_tab(_tabs, token)):
                task = loop.create_task(work)
                _closing.add(task)
                task.add_done_callback(_closing.discard)
        return result

    namespace._build_static_router_data = build_static_router_data  # type: ignore[method-assign]
    namespace.on_disconnect = on_disconnect  # type: ignore[method-assign]


_closing: set[asyncio.Task[None]] = set()
_rereads: set[asyncio.Task[bool]] = set()
# This app's tabs, as the live layer reaches them (Reflex's managers are looked up on use).
_tabs = ReflexTabs(app)


def _reread_soon(token: str) -> None:
    """A tab whose held states were lost re-reads what it shows (``ReflexTabs.reread``)."""
    logging.getLogger("iris.live").warning(
        "tab %s… lost what its held states gained: re-reading it", token[:8]
    )
    task = asyncio.get_running_loop().create_task(_tabs.reread(token))
    _rereads.add(task)
    task.add_done_callback(_rereads.discard)


async def connect_live() -> None:
    """Lifespan task: events published by actions are fanned out on this loop, pushes reach
    tabs through this app, closed tabs reach presence, and the sweep's deletions reach
    screens."""
    _tabs.keep_tokens_of_dead_workers(workers.is_dead)
    _tabs.on_refused_write_back(_reread_soon)
    push.install(_tabs)
    _wrap_socket_namespace()
    outbox.bind(fanout.deliver)
    sweeper.on_vanished(message_actions.messages_vanished)
    try:
        await asyncio.Event().wait()
    finally:
        sweeper.on_vanished(None)
        outbox.unbind()
        push.install(None)


async def keep_tabs_alive() -> None:
    """Lifespan task (several workers): renew the stored state of the tabs connected to
    this worker, so it may expire soon after a tab closes (``live.keepalive``)."""
    await keepalive.watch(_tabs)


async def keep_held_locks() -> None:
    """Lifespan task (several workers): renew the Redis locks of the tab states this worker
    holds in memory, so a busy worker's write-back is never refused and a hold may outlast
    Reflex's lock expiry (``live.keepalive``, ``ReflexTabs.hold_states``)."""
    _tabs.hold_states(get_settings().tab_hold_seconds)
    await keepalive.watch_held_locks(_tabs)


app.register_lifespan_task(startup.check_database)
app.register_lifespan_task(connect_live)
app.register_lifespan_task(presence.watch)
app.register_lifespan_task(workers.watch)
app.register_lifespan_task(push.receive_relayed)
app.register_lifespan_task(keep_tabs_alive)
app.register_lifespan_task(keep_held_locks)
app.register_lifespan_task(sweeper.run)
# Last: whatever start-up built is there to be frozen.
app.register_lifespan_task(startup.tune_garbage_collection)

app.add_page(
    home_page,
    route="/",
    title="Iris",
    on_load=[
        SessionState.require_user,
        SidebarState.load,
        FriendsState.load,
        MessagesState.load,
        ConversationState.detect_timezone,
    ],
)
app.add_page(
    login_page,
    route="/login",
    title="Sign in · Iris",
    on_load=[AuthFormState.clear, SessionState.redirect_if_signed_in],
)
app.add_page(
    register_page,
    route="/register",
    title="Create account · Iris",
    on_load=[AuthFormState.clear, SessionState.redirect_if_signed_in],
)
app.add_page(
    settings_page,
    route="/settings",
    title="Settings · Iris",
    on_load=[SessionState.require_user, SettingsState.load, SecurityState.load],
)
