"""The session cookie of each open websocket, held by this process only.

Reflex copies a socket's handshake headers into every tab's state (``router.headers``), and
with several workers that state is pickled into Redis (until 15 minutes after its tab
closed, ``live.keepalive``): the ``iris_session`` cookie, a bearer of the whole account,
would sit there with it. So the app takes the cookie
out of the headers when a socket connects (``without_session_cookie``, wrapped around
Reflex's router data in ``iris_reflex.py``) and keeps it here, by socket id, until the socket
closes. Events always arrive on the socket of the worker that holds this entry; pushes from
other workers never need the cookie (they check the session id the tab verified).
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Any

from iris_reflex.paths import SESSION_COOKIE

_cookies: dict[str, str] = {}


def parse_session_cookie(header: str) -> str | None:
    """The session token in a ``Cookie`` header, if any."""
    if not header:
        return None
    try:
        morsel = SimpleCookie(header).get(SESSION_COOKIE)
    except CookieError:
        return None
    return morsel.value if morsel else None


def without_session_cookie(sid: str, router_data: dict[str, Any]) -> dict[str, Any]:
    """Keep the socket's session cookie here and drop it from the headers Reflex stores."""
    headers = router_data.get("headers")
    if not isinstance(headers, dict):
        return router_data
    raw = str(headers.get("cookie", ""))
    token = parse_session_cookie(raw)
    if token is None:
        _cookies.pop(sid, None)
        return router_data
    _cookies[sid] = token
    others = [part.strip() for part in raw.split(";") if part.strip()]
    kept = [part for part in others if part.split("=", 1)[0].strip() != SESSION_COOKIE]
    headers = {name: value for name, value in headers.items() if name != "cookie"}
    if kept:
        headers["cookie"] = "; ".join(kept)
    return {**router_data, "headers": headers}


def session_token(sid: str) -> str | None:
    """The session cookie the socket ``sid`` connected with (None if it sent none)."""
    return _cookies.get(sid)


def forget(sid: str) -> None:
    """The socket closed."""
    _cookies.pop(sid, None)
