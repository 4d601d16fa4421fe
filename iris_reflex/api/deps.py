"""FastAPI dependencies shared by every ``/api`` route: a database session and the caller.

Why it is built this way:
- One way to learn who is asking. Other clients send ``Authorization: Bearer <token>``; the
  browser sends its ``HttpOnly`` session cookie (it cannot read the token, so it cannot send a
  header). Both carry the same kind of session token and are verified by the same
  ``auth.authenticate``, so a revoked session stops working everywhere at once.
- A bearer header wins over the cookie, so a script is never silently acting as whoever is
  logged in to the browser it runs next to.
- The cookie is ``SameSite=Strict``: another site cannot make the browser send it. On top of
  that, a cookie-authenticated write must come from one of this deployment's origins
  (``IRIS_ALLOWED_ORIGINS``, ``check_origin``), with its ``Origin`` header present.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from iris_reflex.db import new_session
from iris_reflex.errors import Forbidden, NotAuthenticated
from iris_reflex.paths import SESSION_COOKIE
from iris_reflex.services import addresses, auth
from iris_reflex.settings import get_settings


async def db_session() -> AsyncIterator[Session]:
    """One database session per request, closed afterwards.

    Opening a session touches no database, so it happens on the loop; FastAPI would run a
    plain generator's start and end in its thread pool, two of the four thread hops a send
    cost. Services commit before they return, which hands the connection back, so closing
    is free too, unless a route failed inside a transaction: that rollback runs in a thread.
    """
    session = new_session()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


def request_token(request: Request) -> str | None:
    """The session token a request carries: the bearer header first, else the cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("Send the token as 'Authorization: Bearer <token>'.")
        return token.strip()
    return request.cookies.get(SESSION_COOKIE)


def client_ip(request: Request) -> str:
    """The client's address, for throttling and rate limits: the peer, or what a trusted
    proxy (``IRIS_TRUSTED_PROXIES``) says in ``X-Forwarded-For`` (``addresses``)."""
    peer = request.client.host if request.client else None
    forwarded = ", ".join(request.headers.getlist("x-forwarded-for")) or None
    return addresses.client_address(peer, forwarded)


@dataclass(frozen=True)
class Caller:
    """The verified identity behind a request. A live session implies its user exists
    (sessions go with their account), so the user's row is read only by routes that show
    it (``users.access_user``), not by every request."""

    identity: auth.Identity

    @property
    def id(self) -> int:
        return self.identity.user_id


DB = Annotated[Session, Depends(db_session)]


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS_SITE = "Cross-site request refused."


def require_own_origin(request: Request) -> None:
    """Refuse a request whose ``Origin`` is not one of this deployment's (or is missing).

    For the routes only this deployment's pages call (the cookie trade and cookie logout),
    and for every write authenticated by the cookie: ``SameSite=Strict`` keeps other *sites*
    from sending it, but a page on another port or subdomain is the same site. Browsers send
    ``Origin`` on every POST, PUT, PATCH and DELETE, same-origin ones included, so a cookie
    write without it did not come from our pages: it is refused too rather than guessed at.
    Scripts and other clients authenticate with the bearer header and are never asked.
    """
    if not get_settings().origin_allowed(request.headers.get("origin")):
        raise Forbidden(CROSS_SITE)


def check_origin(request: Request) -> None:
    """A cookie-authenticated request: unsafe methods must come from our own origin."""
    if request.method not in SAFE_METHODS:
        require_own_origin(request)


def caller(request: Request, session: DB) -> Caller:
    """The signed-in caller, or 401 (``NotAuthenticated``); a cookie-authenticated write
    from another origin is refused (403)."""
    token = request_token(request)
    if token is not None and "authorization" not in request.headers:
        check_origin(request)
    return Caller(identity=auth.authenticate(session, token))


CurrentCaller = Annotated[Caller, Depends(caller)]


def caller_or_none(request: Request, session: DB) -> Caller | None:
    """The signed-in caller, or ``None``: for routes that answer 404 to strangers and to
    signed-out requests alike, so a file's existence is never revealed."""
    try:
        return caller(request, session)
    except NotAuthenticated:
        return None


OptionalCaller = Annotated[Caller | None, Depends(caller_or_none)]
