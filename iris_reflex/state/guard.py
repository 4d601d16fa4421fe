"""One way every handler turns a refusal into what the page shows.

Handlers verify the session first (``SessionState._signed_in``), then call a service or an
action. A ``NotAuthenticated`` (no cookie, a revoked or expired session) empties the tab
(``SessionState._empty_tab``: every substate's data, its place in the live registry) and
sends it to the login page; a ``DomainError`` (not friends, too long, throttled ...) becomes
an error toast, or whatever the handler asks for instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import reflex as rx

from iris_reflex.errors import DomainError, NotAuthenticated
from iris_reflex.paths import LOGIN_ROUTE

F = TypeVar("F", bound=Callable[..., Any])


def toast(_state: Any, message: str) -> Any:
    return rx.toast.error(message)


def guarded(fn: F | None = None, *, refused: Callable[[Any, str], Any] = toast) -> Any:
    """Decorate a handler (``@guarded`` or ``@guarded(refused=...)``, under ``@rx.event``).

    ``refused(state, message)`` gives what a refused action sends the page; the default is
    an error toast.
    """

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                result = handler(self, *args, **kwargs)
                return await result if inspect.isawaitable(result) else result
            except NotAuthenticated:
                # Not just sent away: whatever the tab holds of the old session goes too.
                if (empty := getattr(self, "_empty_tab", None)) is not None:
                    await empty()
                return rx.redirect(LOGIN_ROUTE)
            except DomainError as exc:
                return refused(self, exc.message)

        return wrapper  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate
