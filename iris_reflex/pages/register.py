"""The create-account page."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.auth_card import auth_card, labelled_input
from iris_reflex.services.users import PASSWORD_MAX, PASSWORD_MIN
from iris_reflex.state.auth_forms import AuthFormState


def register_page() -> rx.Component:
    """Username, password twice; rules are stated up front, errors above the form."""
    form = rx.form(
        rx.vstack(
            labelled_input(
                "Username",
                "username",
                auto_complete="username",
                required=True,
                auto_focus=True,
                max_length=32,
            ),
            rx.text(
                "3 to 32 letters, digits, _ or . — shown as you type it.",
                size="1",
                color_scheme="gray",
            ),
            labelled_input(
                "Password", "password", type="password", auto_complete="new-password", required=True
            ),
            rx.text(
                f"At least {PASSWORD_MIN} characters (at most {PASSWORD_MAX}).",
                size="1",
                color_scheme="gray",
            ),
            labelled_input(
                "Confirm password",
                "confirm",
                type="password",
                auto_complete="new-password",
                required=True,
            ),
            rx.button(
                "Create account", type="submit", size="3", width="100%", loading=AuthFormState.busy
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=AuthFormState.register,
        width="100%",
    )
    footer = rx.text(
        "Already have an account? ",
        rx.link("Sign in", href="/login", weight="medium"),
        size="2",
    )
    return auth_card("Create your account", "Private conversations, on your terms.", form, footer)
