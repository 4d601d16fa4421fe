"""Reflex states driven directly through their event handlers, against a real database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import reflex as rx
from reflex.istate.data import RouterData

import iris_reflex.iris_reflex  # noqa: F401  (registers every state on rx.State)
from iris_reflex.settings import get_settings


@pytest.fixture
def app_db(database_url: str, session, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the app's own sessions (``session_scope``) at this module's test database."""
    monkeypatch.setattr(get_settings(), "database_url", database_url)
    yield database_url


def make_state(
    cls: type[rx.State], *, cookie: str = "", ip: str = "203.0.113.7", pathname: str = "/"
) -> Any:
    """A fresh state tree for one browser tab (its own client token), on ``pathname``, sending
    this cookie header."""
    root = rx.State(_reflex_internal_init=True)
    root.router = RouterData.from_router_data(
        {
            "headers": {"cookie": cookie} if cookie else {},
            "ip": ip,
            "pathname": pathname,
            "token": secrets.token_hex(16),
        }
    )
    return root.get_substate(cls.get_full_name().split(".")[1:])


def action_name(spec: Any) -> str:
    """The name of the client action an event handler returned (``_redirect``, ...)."""
    return spec.handler.fn.__qualname__


def action_args(spec: Any) -> dict[str, Any]:
    """The literal arguments of a returned client action."""
    return {name._js_expr: getattr(value, "_var_value", None) for name, value in spec.args}
