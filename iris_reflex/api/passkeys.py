"""Passkeys over JSON: sign in with one, pass the second step with one, and manage the
caller's own.

Routes only translate: ``services.passkeys`` (the ceremonies, challenges, sign counts),
``services.auth`` (sessions, throttling) and ``services.accounts`` (re-authentication) hold
every rule. Each ceremony is two calls: ask for options (a challenge that works once, for 5
minutes), give them to ``navigator.credentials.create``/``.get``, send the answer back.
Cookie-authenticated writes need one of the allowed origins, as everywhere (``deps.caller``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request, Response

from iris_reflex import clock
from iris_reflex.api.accounts import bearer, user_agent
from iris_reflex.api.deps import DB, CurrentCaller, client_ip
from iris_reflex.api.openapi import JsonSafeRoute, errors
from iris_reflex.api.schemas import (
    MAX_ID,
    PasskeyIn,
    PasskeyNameIn,
    PasskeyOptionsOut,
    PasskeyOut,
    PasskeySecondFactorIn,
    PasskeySignInIn,
    ReauthenticateIn,
    SecondFactorTokenIn,
    TokenOut,
)
from iris_reflex.services import accounts, auth, passkeys

router = APIRouter(tags=["passkeys"], route_class=JsonSafeRoute)
signed_in = APIRouter(tags=["passkeys"], dependencies=[Depends(bearer)], route_class=JsonSafeRoute)

PasskeyId = Path(ge=1, le=MAX_ID, description="The ``id`` from GET /api/passkeys.")


@router.post("/auth/passkey/options", response_model=PasskeyOptionsOut, responses=errors(422, 429))
def sign_in_options(request: Request, session: DB) -> PasskeyOptionsOut:
    """Options to sign in with a passkey alone (any passkey of this site: the
    authenticator offers its own). Requests per address are limited (429)."""
    options = auth.passkey_sign_in_options(session, ip=client_ip(request))
    return PasskeyOptionsOut(public_key=options)


@router.post("/auth/passkey/login", response_model=TokenOut, responses=errors(400, 401, 422))
def sign_in(body: PasskeySignInIn, request: Request, session: DB) -> TokenOut:
    """Sign in with the answer to a passkey challenge: a new session and its bearer token,
    without password or code (a passkey is possession plus user verification)."""
    signed = auth.login_with_passkey(
        session, credential=body.credential, ip=client_ip(request), user_agent=user_agent(request)
    )
    return TokenOut.of(signed, clock.now())


@router.post(
    "/auth/login/second-factor/passkey/options",
    response_model=PasskeyOptionsOut,
    responses=errors(400, 401, 422),
)
def second_factor_options(body: SecondFactorTokenIn, session: DB) -> PasskeyOptionsOut:
    """Options to pass the login's second step with one of the account's passkeys (when
    the 202 answer's ``methods`` include ``passkey``)."""
    options = auth.passkey_second_factor_options(session, challenge=body.second_factor_token)
    return PasskeyOptionsOut(public_key=options)


@router.post(
    "/auth/login/second-factor/passkey",
    response_model=TokenOut,
    responses=errors(400, 401, 422, 429),
)
def second_factor(body: PasskeySecondFactorIn, request: Request, session: DB) -> TokenOut:
    """The login's second step with a passkey. Failures are throttled like wrong codes;
    the token opens one session at most."""
    signed = auth.finish_login_with_passkey(
        session,
        challenge=body.second_factor_token,
        credential=body.credential,
        ip=client_ip(request),
        user_agent=user_agent(request),
    )
    return TokenOut.of(signed, clock.now())


@signed_in.get("/passkeys", response_model=list[PasskeyOut], responses=errors(401))
def list_passkeys(caller: CurrentCaller, session: DB) -> list[PasskeyOut]:
    """The caller's passkeys, oldest first."""
    return [PasskeyOut.of(p) for p in passkeys.list_passkeys(session, actor_id=caller.id)]


@signed_in.post(
    "/passkeys/options",
    response_model=PasskeyOptionsOut,
    responses=errors(400, 401, 403, 409, 422, 429),
)
def registration_options(
    body: ReauthenticateIn, request: Request, caller: CurrentCaller, session: DB
) -> PasskeyOptionsOut:
    """Options to add a passkey, after the password or a current code (wrong ones count
    like failed sign-ins)."""
    options = accounts.begin_passkey_registration(
        session,
        actor_id=caller.id,
        password=body.password,
        code=body.code,
        ip=client_ip(request),
    )
    return PasskeyOptionsOut(public_key=options)


@signed_in.post(
    "/passkeys",
    status_code=201,
    response_model=PasskeyOut,
    responses=errors(400, 401, 403, 409, 422),
)
def add_passkey(body: PasskeyIn, caller: CurrentCaller, session: DB) -> PasskeyOut:
    """Store the passkey the browser made for the caller's registration challenge."""
    info = passkeys.register(
        session, actor_id=caller.id, credential=body.credential, name=body.name
    )
    return PasskeyOut.of(info)


@signed_in.patch(
    "/passkeys/{passkey_id}", response_model=PasskeyOut, responses=errors(400, 401, 403, 404, 422)
)
def rename_passkey(
    body: PasskeyNameIn, caller: CurrentCaller, session: DB, passkey_id: int = PasskeyId
) -> PasskeyOut:
    """Give one of the caller's passkeys another name."""
    info = passkeys.rename(session, actor_id=caller.id, passkey_id=passkey_id, name=body.name)
    return PasskeyOut.of(info)


@signed_in.delete(
    "/passkeys/{passkey_id}",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 403, 404, 422, 429),
)
def delete_passkey(
    body: ReauthenticateIn,
    request: Request,
    caller: CurrentCaller,
    session: DB,
    passkey_id: int = PasskeyId,
) -> Response:
    """Delete one of the caller's passkeys (it signs in no more), after the password or a
    current code."""
    accounts.remove_passkey(
        session,
        actor_id=caller.id,
        passkey_id=passkey_id,
        password=body.password,
        code=body.code,
        ip=client_ip(request),
    )
    return Response(status_code=204)
