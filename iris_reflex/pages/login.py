"""The sign-in page."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.auth_card import auth_card, labelled_input
from iris_reflex.components.passkeys import passkeys_loader
from iris_reflex.state.auth_forms import CODE_FIELD, AuthFormState


def _passkey_button(label: str, on_click: object, id_: str, **props: object) -> rx.Component:
    return rx.button(
        rx.icon("key-round", size=16, aria_hidden="true"),
        label,
        type="button",
        size="3",
        width="100%",
        on_click=on_click,
        loading=AuthFormState.passkey_busy,
        id=id_,
        **props,
    )


def _or() -> rx.Component:
    return rx.hstack(
        rx.separator(size="4", flex="1"),
        rx.text("or", size="1", color_scheme="gray"),
        rx.separator(size="4", flex="1"),
        align="center",
        width="100%",
        aria_hidden="true",
    )


def _back_button() -> rx.Component:
    return rx.button(
        rx.icon("arrow-left", size=16),
        "Back",
        type="button",
        variant="ghost",
        color_scheme="gray",
        on_click=AuthFormState.back_to_password,
        id="code-back",
    )


def _passkey_only_step() -> rx.Component:
    """The second step when the account has no authenticator app: its passkey."""
    return rx.vstack(
        rx.text("Use the passkey you added to your account.", size="2"),
        _passkey_button(
            "Use your passkey", AuthFormState.use_passkey, "second-step-passkey", auto_focus=True
        ),
        _back_button(),
        spacing="4",
        width="100%",
    )


def _code_form() -> rx.Component:
    """The second step: the authenticator app's code, or a recovery code (or a passkey)."""
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
            rx.cond(
                AuthFormState.passkey_step,
                rx.fragment(
                    _or(),
                    _passkey_button(
                        "Use a passkey instead",
                        AuthFormState.use_passkey,
                        "second-step-passkey",
                        variant="soft",
                    ),
                ),
            ),
            _back_button(),
            spacing="4",
            width="100%",
        ),
        on_submit=AuthFormState.verify_code,
        reset_on_submit=False,
        width="100%",
        id="code-form",
    )


def login_page() -> rx.Component:
    """Username and password or a passkey, then (with two-step sign-in) a code or a
    passkey; errors appear above."""
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
    first_step = rx.vstack(
        password_form,
        _or(),
        _passkey_button(
            "Sign in with a passkey",
            AuthFormState.sign_in_with_passkey,
            "passkey-sign-in",
            variant="soft",
        ),
        spacing="4",
        width="100%",
    )
    second_step = rx.cond(AuthFormState.code_step, _code_form(), _passkey_only_step())
    form = rx.fragment(
        passkeys_loader(), rx.cond(AuthFormState.second_step, second_step, first_step)
    )
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
