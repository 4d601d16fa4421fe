"""The Iris logo mark and name."""

from __future__ import annotations

import reflex as rx


def logo(size: str = "6") -> rx.Component:
    """The iris mark: a ring around a pupil, in the accent colour."""
    return rx.hstack(
        rx.box(
            rx.box(
                width="40%",
                height="40%",
                border_radius="50%",
                background=rx.color("accent", 12),
            ),
            display="flex",
            align_items="center",
            justify_content="center",
            width="1.6em",
            height="1.6em",
            border_radius="50%",
            background=f"radial-gradient(circle, {rx.color('accent', 7)} 0%, "
            f"{rx.color('accent', 9)} 70%)",
            aria_hidden="true",
        ),
        rx.heading("Iris", size=size, weight="bold"),
        align="center",
        spacing="2",
    )


def avatar(name: rx.Var | str, size: str = "3") -> rx.Component:
    """A round avatar with the first letter of ``name``."""
    return rx.avatar(
        fallback=rx.cond(name, name.to(str)[0].upper(), "?"),
        size=size,
        radius="full",
        variant="soft",
    )


# Sonner's "rich colours" put green, red and blue text on pale backgrounds below the 4.5:1
# contrast WCAG asks for (e.g. #008a2e on #ecfdf3 is 4.0:1); darker text keeps the colours.
TOAST_CONTRAST_CSS = """
html [data-sonner-toaster][data-sonner-theme='light'],
html [data-sonner-toaster][data-theme='light'] {
  --success-text: hsl(140, 100%, 20%);
  --error-text: hsl(360, 100%, 33%);
  --info-text: hsl(210, 92%, 33%);
  --warning-text: hsl(31, 92%, 28%);
}
"""
