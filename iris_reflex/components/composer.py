"""The composer: the text box, the files tray, and the disappearing-message timer picker."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.media import upload_controls
from iris_reflex.services.sending import MAX_BODY
from iris_reflex.services.timers import TIMER_CHOICES
from iris_reflex.state.composer import ComposerState


def timer_picker() -> rx.Component:
    """How long the next message lives: the chat's default, off, a preset or a custom period."""
    return rx.hstack(
        rx.icon("timer", size=16, color=rx.color("gray", 10)),
        rx.select.root(
            rx.select.trigger(aria_label="Disappearing timer", variant="ghost"),
            rx.select.content(
                *[rx.select.item(label, value=value) for value, label in TIMER_CHOICES]
            ),
            value=ComposerState.timer_choice,
            on_change=ComposerState.set_timer_choice,
            size="1",
        ),
        rx.cond(
            ComposerState.timer_choice == "custom",
            rx.input(
                placeholder="e.g. 90s, 10m, 2h, 3d",
                value=ComposerState.custom_timer,
                on_change=ComposerState.set_custom_timer,
                size="1",
                width="9em",
                aria_label="Custom timer",
            ),
        ),
        rx.el.label(
            rx.hstack(
                rx.checkbox(
                    aria_label="Start the timer after reading",
                    checked=ComposerState.timer_after_read,
                    on_change=ComposerState.set_timer_after_read,
                    size="1",
                ),
                rx.text("after reading", size="1"),
                spacing="1",
                align="center",
            ),
        ),
        rx.spacer(),
        rx.button(
            "Set as chat default",
            size="1",
            variant="ghost",
            on_click=ComposerState.set_conversation_default,
        ),
        align="center",
        spacing="2",
        width="100%",
    )


def composer() -> rx.Component:
    """Enter sends, Shift+Enter makes a new line. The timer picker sits outside the form so
    that clearing the text after a send never resets the chosen timer. Files come by the
    paperclip, by dropping them on the conversation or by pasting; see ``components.media``."""
    file_input, picker, tray, attachment_ids = upload_controls()
    return rx.vstack(
        file_input,
        timer_picker(),
        rx.form(
            tray,
            attachment_ids,
            rx.hstack(
                picker,
                rx.text_area(
                    name="body",
                    id="composer",
                    placeholder="Write a message",
                    aria_label="Message",
                    enter_key_submit=True,
                    on_change=ComposerState.typing.throttle(2000),
                    auto_height=True,
                    rows="1",
                    max_length=MAX_BODY,
                    size="3",
                    flex="1",
                    min_height="44px",
                    max_height="160px",
                    resize="none",
                ),
                rx.icon_button(
                    rx.icon("send-horizontal", size=18), type="submit", size="3", aria_label="Send"
                ),
                align="end",
                spacing="2",
                width="100%",
            ),
            on_submit=ComposerState.send_message,
            reset_on_submit=True,
            id="composer-form",
            width="100%",
            display="flex",
            flex_direction="column",
            gap="0.5em",
        ),
        spacing="2",
        width="100%",
        padding="0.75em 1em",
        border_top=f"1px solid {rx.color('gray', 5)}",
    )
