"""The Reflex app: pages, the FastAPI app it mounts in, and start-up checks."""

from __future__ import annotations

import reflex as rx

from iris_reflex import startup
from iris_reflex.api.app import create_api
from iris_reflex.components.brand import CONTRAST_CSS
from iris_reflex.jobs import sweeper
from iris_reflex.live import presence
from iris_reflex.pages.home import home_page
from iris_reflex.pages.login import login_page
from iris_reflex.pages.register import register_page
from iris_reflex.pages.settings import settings_page
from iris_reflex.state.auth_forms import AuthFormState
from iris_reflex.state.chat import ChatState
from iris_reflex.state.session import SessionState
from iris_reflex.state.settings import SettingsState

app = rx.App(
    api_transformer=create_api(),
    # Top centre: bottom-right toasts would cover the composer's send button.
    toaster=rx.toast.provider(position="top-center", close_button=True),
    head_components=[
        rx.el.meta(name="description", content="Iris: private messaging."),
        rx.el.style(CONTRAST_CSS),
    ],
)
app.register_lifespan_task(startup.check_database)
app.register_lifespan_task(presence.watch)
app.register_lifespan_task(sweeper.run)

app.add_page(
    home_page, route="/", title="Iris", on_load=[SessionState.require_user, ChatState.load]
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
    on_load=[SessionState.require_user, SettingsState.load],
)
