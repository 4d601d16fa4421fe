"""The centred card that holds the login and register forms."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.brand import logo
from iris_reflex.state.auth_forms import AuthFormState


def labelled_input(label: str, name: str, **props: object) -> rx.Component:
    """An input with a visible label tied to it (accessible name) and full width."""
    return rx.vstack(
        rx.el.label(label, html_for=name, class_name="rt-Text rt-r-size-2 rt-r-weight-medium"),
        rx.input(id=name, name=name, size="3", width="100%", **props),
        spacing="1",
        width="100%",
    )


def error_line() -> rx.Component:
    """The form's error, announced to screen readers."""
    return rx.cond(
        AuthFormState.error,
        rx.callout(
            AuthFormState.error,
            icon="circle-alert",
            color_scheme="red",
            role="alert",
            width="100%",
            id="form-error",
        ),
    )


def auth_card(
    title: str | rx.Var, subtitle: str | rx.Var, form: rx.Component, footer: rx.Component
) -> rx.Component:
    """A page with the logo, a title and the form in a card, centred on any screen."""
    return rx.center(
        rx.vstack(
            logo("7"),
            rx.card(
                rx.vstack(
                    rx.heading(title, size="6", as_="h1"),
                    rx.text(subtitle, color_scheme="gray", size="2"),
                    error_line(),
                    form,
                    spacing="4",
                    width="100%",
                ),
                size="4",
                width="100%",
            ),
            footer,
            align="center",
            spacing="5",
            width="100%",
            max_width="420px",
            padding="1.5em",
        ),
        min_height="100vh",
        background=rx.color("accent", 2),
    )
