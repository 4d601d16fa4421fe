"""The sign-in page."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.auth_card import auth_card, labelled_input
from iris_reflex.state.auth_forms import AuthFormState


def login_page() -> rx.Component:
    """Username and password; errors appear above the form."""
    form = rx.form(
        rx.vstack(
            labelled_input(
                "Username", "username", auto_complete="username", required=True, auto_focus=True
            ),
            labelled_input(
                "Password",
                "password",
                type="password",
                auto_complete="current-password",
                required=True,
            ),
            rx.button("Sign in", type="submit", size="3", width="100%", loading=AuthFormState.busy),
            spacing="4",
            width="100%",
        ),
        on_submit=AuthFormState.log_in,
        width="100%",
    )
    footer = rx.text(
        "New to Iris? ",
        rx.link("Create an account", href="/register", weight="medium"),
        size="2",
    )
    return auth_card("Welcome back", "Sign in to your conversations.", form, footer)
