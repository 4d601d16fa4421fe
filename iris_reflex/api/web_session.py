"""The browser's session cookie: set from a handoff token, cleared on logout.

Why a cookie set here: a cookie written by JavaScript cannot be HttpOnly, so the web UI's
login handler gives the page a 60-second handoff token and the page trades it here for an
``HttpOnly; SameSite=Strict`` cookie. Reflex event handlers then read it from the websocket's
handshake headers; page scripts never see the session token.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from iris_reflex import clock
from iris_reflex.api.deps import require_own_origin
from iris_reflex.api.openapi import JsonSafeRoute, errors
from iris_reflex.db import session_scope
from iris_reflex.errors import NotAuthenticated
from iris_reflex.paths import SESSION_COOKIE
from iris_reflex.services import auth
from iris_reflex.settings import get_settings

# Only this deployment's pages call these routes: a foreign or missing ``Origin`` is refused
# before anything runs (a foreign page could otherwise log the victim out, or log them in
# as the attacker by trading the attacker's own handoff: login CSRF).
router = APIRouter(
    prefix="/auth/web",
    tags=["web session"],
    route_class=JsonSafeRoute,
    dependencies=[Depends(require_own_origin)],
)


class HandoffIn(BaseModel):
    """The short-lived token the login handler gave the page."""

    handoff: str = Field(min_length=1, max_length=2048)


def _set_cookie(response: Response, token: str, expires_at: datetime) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(0, int((expires_at - clock.now()).total_seconds())),
        httponly=True,
        secure=get_settings().cookie_secure,
        samesite="strict",
        path="/",
    )


@router.post("/session", status_code=204, response_class=Response, responses=errors(401, 403, 422))
def open_web_session(body: HandoffIn) -> Response:
    """Trade a handoff token for the HttpOnly session cookie."""
    with session_scope() as db:
        token, expires_at = auth.redeem_handoff(db, body.handoff)
    response = Response(status_code=204)
    _set_cookie(response, token, expires_at)
    return response


@router.post("/logout", status_code=204, response_class=Response, responses=errors(403))
def close_web_session(request: Request) -> Response:
    """End the cookie's session (if any) and clear the cookie; from our own pages (their
    ``Origin``) it always succeeds."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with session_scope() as db:
            try:
                auth.logout(db, auth.authenticate(db, token))
            except NotAuthenticated:
                pass
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
