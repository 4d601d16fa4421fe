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


# WCAG asks for 4.5:1 contrast. Sonner's "rich colours" put green, red and blue text on pale
# backgrounds below it (#008a2e on #ecfdf3 is 4.0:1), and white on Radix's solid red (red 9,
# #e5484d) is 3.9:1; darker shades keep the colours and pass.
CONTRAST_CSS = """
.rt-Button.rt-variant-solid[data-accent-color='red'] { background-color: #c62a2f; }
.rt-Button.rt-variant-solid[data-accent-color='red']:hover { background-color: #b0242a; }
html [data-sonner-toaster][data-sonner-theme='light'],
html [data-sonner-toaster][data-theme='light'] {
  --success-text: hsl(140, 100%, 20%);
  --error-text: hsl(360, 100%, 33%);
  --info-text: hsl(210, 92%, 33%);
  --warning-text: hsl(31, 92%, 28%);
}
"""
