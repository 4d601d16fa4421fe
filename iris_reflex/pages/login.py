"""The sign-in page."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.auth_card import auth_card, labelled_input
from iris_reflex.state.auth_forms import CODE_FIELD, AuthFormState


def _code_form() -> rx.Component:
    """The second step: the authenticator app's code, or a recovery code."""
    return rx.form(
        rx.vstack(
            rx.text(
                "Enter the 6-digit code from your authenticator app, or one of your "
                "recovery codes.",
                size="2",
            ),
            labelled_input(
                "Code",
                CODE_FIELD,
                auto_complete="one-time-code",
                input_mode="text",
                required=True,
                auto_focus=True,
                max_length=64,
                placeholder="123456",
                spell_check=False,
                auto_capitalize="off",
            ),
            rx.button(
                "Verify and sign in",
                type="submit",
                size="3",
                width="100%",
                loading=AuthFormState.busy,
            ),
            rx.button(
                rx.icon("arrow-left", size=16),
                "Back",
                type="button",
                variant="ghost",
                color_scheme="gray",
                on_click=AuthFormState.back_to_password,
                id="code-back",
            ),
            spacing="4",
            width="100%",
        ),
        on_submit=AuthFormState.verify_code,
        reset_on_submit=False,
        width="100%",
        id="code-form",
    )


def login_page() -> rx.Component:
    """Username and password, then (with two-step sign-in) a code; errors appear above."""
    password_form = rx.form(
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
    form = rx.cond(AuthFormState.second_step, _code_form(), password_form)
    footer = rx.text(
        "New to Iris? ",
        rx.link("Create an account", href="/register", weight="medium"),
        size="2",
    )
    title = rx.cond(AuthFormState.second_step, "Two-step sign-in", "Welcome back")
    subtitle = rx.cond(
        AuthFormState.second_step,
        "One more step: your password was right.",
        "Sign in to your conversations.",
    )
    return auth_card(title, subtitle, form, footer)
