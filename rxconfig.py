"""Reflex configuration. Iris's own settings come from ``iris_reflex.settings`` (IRIS_*);
Reflex's own fields can still be overridden with REFLEX_<FIELD> (ports, api_url, ...)."""

import reflex as rx

from iris_reflex.settings import get_settings

_settings = get_settings()

config = rx.Config(
    app_name="iris_reflex",
    db_url=_settings.database_url,
    redis_url=_settings.redis_url or None,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(
                accent_color="iris", gray_color="slate", radius="large", appearance="inherit"
            )
        ),
    ],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
