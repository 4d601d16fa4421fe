"""Conversation pieces: sidebar rows, message bubbles, the composer."""

from __future__ import annotations

import reflex as rx

from iris_reflex.components.composer import composer
from iris_reflex.components.media import attachment_view, backend_url
from iris_reflex.state.conversation import ConversationState, MessagesState
from iris_reflex.state.rows import ConversationRow, MessageRow

# Counts down every timed bubble and hides it the moment its deadline passes; the server's
# sweep then removes it for good (and from every other screen) within about a second.
COUNTDOWN_SCRIPT = """
(() => {
  if (window.__irisCountdown) return;
  window.__irisCountdown = setInterval(() => {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-expires]')) {
      const left = Number(el.dataset.expires) - now;
      if (!Number(el.dataset.expires)) continue;
      const row = el.closest('.message');
      if (left <= 0) { if (row) row.style.display = 'none'; continue; }
      if (row && row.style.display === 'none') row.style.display = '';
      const s = Math.ceil(left / 1000);
      el.textContent = s < 60 ? s + 's' : s < 3600 ? Math.floor(s / 60) + 'm ' + (s % 60) + 's'
        : s < 86400 ? Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm'
        : Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
    }
  }, 250);
})();
"""


def initial_avatar(
    initial: rx.Var[str], size: str = "3", picture: rx.Var[str] | str = ""
) -> rx.Component:
    """A round avatar: the profile picture when there is one, else one letter."""
    source = rx.cond(picture != "", backend_url(picture), "") if isinstance(picture, rx.Var) else ""
    return rx.avatar(
        src=source,
        fallback=initial,
        size=size,
        radius="full",
        variant="soft",
        # Decorative: the name is always next to it. (A plain alt= prop would become CSS.)
        custom_attrs={"alt": ""},
    )


def conversation_row(row: ConversationRow) -> rx.Component:
    """A sidebar entry: avatar, name, last message preview, time and unread badge."""
    return rx.el.button(
        rx.hstack(
            initial_avatar(row.initial, "3", row.avatar),
            rx.vstack(
                rx.hstack(
                    rx.text(
                        row.display_name,
                        weight="bold",
                        size="2",
                        class_name="iris-ellipsis",
                    ),
                    rx.spacer(),
                    rx.text(row.time, size="1", color_scheme="gray"),
                    width="100%",
                    align="center",
                ),
                rx.hstack(
                    rx.text(
                        row.preview,
                        size="2",
                        color_scheme="gray",
                        class_name="iris-ellipsis",
                    ),
                    rx.spacer(),
                    rx.cond(
                        row.unread > 0,
                        rx.badge(
                            row.unread,
                            radius="full",
                            variant="solid",
                            aria_label=f"{row.unread} unread",
                            class_name="unread-badge",
                        ),
                    ),
                    width="100%",
                    align="center",
                ),
                spacing="1",
                flex="1",
                min_width="0",
            ),
            align="center",
            spacing="3",
            width="100%",
        ),
        on_click=ConversationState.open_conversation(row.username),
        class_name=rx.cond(row.active, "iris-row iris-row-active", "iris-row"),
        aria_label=f"Conversation with {row.display_name}",
        data_username=row.username,
    )


def _status_icon(message: MessageRow) -> rx.Component:
    return rx.cond(
        message.status == "read",
        rx.icon("check-check", size=14, aria_label="Read", class_name="receipt-read"),
        rx.icon("check", size=14, aria_label="Sent", class_name="receipt-sent"),
    )


def message_bubble(message: MessageRow) -> rx.Component:
    """One message; its text is rendered as text (markup never runs)."""
    bubble = rx.box(
        rx.cond(
            message.attachments.length() > 0,
            rx.el.div(rx.foreach(message.attachments, attachment_view), class_name="attachments"),
        ),
        rx.cond(
            message.body != "",
            rx.text(
                message.body,
                size="2",
                white_space="pre-wrap",
                word_break="break-word",
                class_name="message-body",
            ),
        ),
        rx.hstack(
            rx.cond(
                message.expires_ms > 0,
                rx.hstack(
                    rx.icon("timer", size=12, aria_label="Disappearing message"),
                    rx.cond(
                        message.waiting_for_read,
                        rx.text("after reading", size="1"),
                        rx.el.span(
                            data_expires=message.expires_ms,
                            class_name="countdown",
                            style={"fontSize": "var(--font-size-1)"},
                        ),
                    ),
                    spacing="1",
                    align="center",
                    # Faded text on the accent bubble would fall below 4.5:1 contrast.
                    opacity=rx.cond(message.mine, "1", "0.85"),
                ),
            ),
            rx.text(message.time, size="1", opacity=rx.cond(message.mine, "1", "0.85")),
            rx.cond(message.mine, _status_icon(message)),
            spacing="1",
            justify="end",
            align="center",
        ),
        padding="0.45em 0.75em",
        border_radius="14px",
        max_width="min(70%, 560px)",
        background=rx.cond(message.mine, rx.color("accent", 9), rx.color("gray", 3)),
        color=rx.cond(message.mine, "var(--accent-contrast)", rx.color("gray", 12)),
    )
    delete_menu = rx.cond(
        message.mine,
        rx.dropdown_menu.root(
            rx.dropdown_menu.trigger(
                rx.icon_button(
                    rx.icon("ellipsis", size=14),
                    variant="ghost",
                    size="1",
                    color_scheme="gray",
                    aria_label="Message actions",
                    class_name="message-actions",
                ),
            ),
            rx.dropdown_menu.content(
                rx.dropdown_menu.item(
                    "Delete for everyone",
                    color="red",
                    on_click=MessagesState.delete_message(message.id),
                ),
            ),
        ),
    )
    notice = rx.center(
        rx.badge(
            rx.icon("timer", size=12),
            message.body,
            variant="soft",
            radius="full",
            size="2",
            class_name="message-notice",
        ),
        width="100%",
        padding_y="0.25em",
    )
    # rx.foreach keys rows by index; keying by message id makes React rebuild a row when the
    # message under it changes, so a bubble hidden by its countdown can't hide the next one.
    return rx.fragment(
        rx.cond(
            message.show_day,
            rx.center(
                rx.badge(message.day, variant="soft", color_scheme="gray", radius="full"),
                padding_y="0.5em",
            ),
        ),
        rx.cond(
            message.notice,
            notice,
            rx.hstack(
                rx.cond(message.mine, rx.spacer()),
                rx.cond(message.mine, delete_menu),
                bubble,
                width="100%",
                align="center",
                spacing="1",
                class_name=rx.cond(message.mine, "message message-mine", "message message-theirs")
                + rx.cond(message.grouped, " message-grouped", ""),
                data_message_id=message.id,
            ),
        ),
        key=message.id,
    )


def conversation_pane() -> rx.Component:
    """The open conversation: header, history (older pages on demand), composer."""
    header = rx.hstack(
        rx.icon_button(
            rx.icon("arrow-left", size=18),
            variant="ghost",
            color_scheme="gray",
            on_click=ConversationState.close_conversation,
            aria_label="Back to chats",
            display=["inline-flex", "inline-flex", "none"],
        ),
        initial_avatar(
            ConversationState.active_display_name.to(str)[0].upper(),
            "3",
            ConversationState.active_avatar,
        ),
        rx.vstack(
            rx.heading(
                ConversationState.active_display_name, size="3", as_="h1", id="conversation-title"
            ),
            rx.hstack(
                rx.text("@", ConversationState.active_username, size="1", color_scheme="gray"),
                rx.cond(
                    ConversationState.active_status != "",
                    rx.text(
                        "· ",
                        ConversationState.active_status,
                        size="1",
                        color_scheme="gray",
                        class_name="iris-ellipsis",
                        id="friend-status",
                    ),
                ),
                rx.cond(
                    ConversationState.active_presence != "",
                    rx.text(
                        "· ",
                        ConversationState.active_presence,
                        size="1",
                        color=rx.cond(
                            ConversationState.active_presence == "online",
                            rx.color("green", 11),
                            rx.color("gray", 11),
                        ),
                        id="presence",
                    ),
                ),
                spacing="1",
            ),
            spacing="0",
        ),
        align="center",
        spacing="3",
        padding="0.75em 1em",
        width="100%",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
    )
    history = rx.box(
        rx.vstack(
            rx.cond(
                MessagesState.has_older,
                rx.center(
                    rx.button(
                        "Load older messages",
                        variant="soft",
                        size="1",
                        on_click=MessagesState.load_older,
                    ),
                    width="100%",
                ),
            ),
            rx.cond(
                (MessagesState.messages.length() == 0) & (MessagesState.arrived.length() == 0),
                rx.center(
                    rx.text("No messages yet. Say hello!", color_scheme="gray", size="2"),
                    padding="3em",
                    width="100%",
                ),
            ),
            rx.foreach(MessagesState.messages, message_bubble),
            rx.foreach(MessagesState.arrived, message_bubble),
            spacing="2",
            padding="1em",
            width="100%",
        ),
        id="message-list",
        flex="1",
        overflow_y="auto",
        width="100%",
        role="log",
        aria_label="Messages",
        aria_live="polite",
    )
    typing = rx.box(
        rx.cond(
            ConversationState.friend_typing,
            rx.text(
                ConversationState.active_display_name,
                " is typing…",
                size="1",
                color_scheme="gray",
                key=ConversationState.typing_seq,
                class_name="iris-typing",
                id="typing-indicator",
            ),
        ),
        height="1.4em",
        padding_x="1em",
        aria_live="polite",
    )
    return rx.vstack(
        header,
        history,
        typing,
        composer(),
        spacing="0",
        height="100vh",
        width="100%",
        id="conversation-pane",
    )
