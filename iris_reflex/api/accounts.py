"""Accounts over JSON: register, sign in for a bearer token, sign out, the caller's profile.

Routes only translate: ``services.users`` and ``services.auth`` hold every rule (username
format, password length, throttling, revocation) and raise the errors mapped to statuses.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from iris_reflex import clock
from iris_reflex.actions import accounts as account_actions
from iris_reflex.api.deps import DB, CurrentCaller, client_ip
from iris_reflex.api.openapi import JsonSafeRoute, errors
from iris_reflex.api.schemas import (
    Credentials,
    DeviceOut,
    MeOut,
    ProfileIn,
    SecondFactorIn,
    SecondFactorOut,
    TokenOut,
    UserOut,
)
from iris_reflex.errors import NotFound, SecondFactorRequired
from iris_reflex.services import auth, friends, users
from iris_reflex.services.users import PublicUser

# Declares the bearer scheme in the OpenAPI document (the "Authorize" button of /api/docs);
# ``deps.caller`` does the actual checking.
bearer = HTTPBearer(auto_error=False, description="The access_token from POST /api/auth/login.")

router = APIRouter(tags=["accounts"], route_class=JsonSafeRoute)
signed_in = APIRouter(tags=["accounts"], dependencies=[Depends(bearer)], route_class=JsonSafeRoute)


@router.post(
    "/auth/register",
    status_code=201,
    response_model=UserOut,
    responses=errors(400, 409, 422, 429),
)
def register(body: Credentials, request: Request, session: DB) -> UserOut:
    """Create an account (3 to 32 letters, digits, ``_`` or ``.``; a password of 8 to 128).
    Attempts per address are limited (429 with Retry-After)."""
    user = users.check_register(
        session, username=body.username, password=body.password, ip=client_ip(request)
    )
    return UserOut.of(PublicUser.of(user))


def user_agent(request: Request) -> str:
    """The caller's User-Agent, cut short (it names the session in the Devices list)."""
    return request.headers.get("user-agent", "")[:512]


@router.post(
    "/auth/login",
    response_model=TokenOut,
    responses={
        202: {
            "model": SecondFactorOut,
            "description": "The password is right and the account uses two-step sign-in: "
            "no session yet; finish with POST /api/auth/login/second-factor.",
        },
        **errors(400, 401, 422, 429),
    },
)
def login(body: Credentials, request: Request, session: DB) -> TokenOut | JSONResponse:
    """Sign in: a new session and its bearer token. Failed attempts are throttled.

    With two-step sign-in on, the answer is 202 with a ``second_factor_token`` instead."""
    try:
        signed = auth.login(
            session,
            username=body.username,
            password=body.password,
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
    except SecondFactorRequired as needed:
        out = SecondFactorOut(
            second_factor_token=needed.challenge,
            expires_in=needed.expires_in,
            methods=list(needed.methods),
        )
        return JSONResponse(out.model_dump(), status_code=202)
    return TokenOut.of(signed, clock.now())


@router.post(
    "/auth/login/second-factor", response_model=TokenOut, responses=errors(400, 401, 422, 429)
)
def login_second_factor(body: SecondFactorIn, request: Request, session: DB) -> TokenOut:
    """The second step of signing in: the token from the login's 202 answer and a code
    (six digits from the authenticator app, or a recovery code). Wrong codes are throttled
    like wrong passwords; the token works for 5 minutes and opens one session."""
    signed = auth.finish_login(
        session,
        challenge=body.second_factor_token,
        code=body.code,
        ip=client_ip(request),
        user_agent=user_agent(request),
    )
    return TokenOut.of(signed, clock.now())


@signed_in.post("/auth/logout", status_code=204, response_class=Response, responses=errors(401))
def logout(caller: CurrentCaller, session: DB) -> Response:
    """End this token's session: it stops working at once (other sessions stay)."""
    auth.logout(session, caller.identity)
    return Response(status_code=204)


@signed_in.get("/sessions", response_model=list[DeviceOut], responses=errors(401))
def sessions(caller: CurrentCaller, session: DB) -> list[DeviceOut]:
    """The caller's signed-in sessions (devices): this one first, then the most recently
    active. Activity is recorded at most every few minutes."""
    return [DeviceOut.of(d) for d in auth.list_devices(session, caller.identity)]


@signed_in.delete(
    "/sessions/{session_id}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 403, 404),
)
def end_session(
    caller: CurrentCaller,
    session: DB,
    session_id: str = Path(max_length=64, description="The ``id`` from GET /api/sessions."),
) -> Response:
    """Sign out one of the caller's sessions: its tokens stop working and its open pages
    are signed out at once."""
    account_actions.sign_out_device(session, identity=caller.identity, handle=session_id)
    return Response(status_code=204)


@signed_in.get("/me", response_model=MeOut, responses=errors(401))
def me(caller: CurrentCaller, session: DB) -> MeOut:
    """The caller's own account."""
    return MeOut.of(users.Me.of(users.access_user(session, caller.id)))


@signed_in.patch("/me", response_model=MeOut, responses=errors(400, 401, 422))
def update_me(body: ProfileIn, caller: CurrentCaller, session: DB) -> MeOut:
    """Change the display name (1 to 64 characters) and/or status (up to 140); friends'
    open screens show them at once."""
    updated = account_actions.update_profile(
        session,
        actor_id=caller.id,
        display_name=body.display_name,
        status_message=body.status_message,
    )
    return MeOut.of(updated)


@signed_in.get("/users/{username}", response_model=UserOut, responses=errors(401, 404, 429))
def user(username: str, caller: CurrentCaller, session: DB) -> UserOut:
    """Someone's public profile, found as search finds people (so a user who blocked the
    caller is not found)."""
    key = users.username_key(username)
    me = users.access_user(session, caller.id)
    if key == me.username_key:
        return UserOut.of(PublicUser.of(me))
    for found in friends.search_users(session, actor_id=caller.id, query=username, limit=1):
        if users.username_key(found.username) == key:
            return UserOut.of(found)
    raise NotFound(users.NO_SUCH_USER)
