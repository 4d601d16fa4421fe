"""Friends, friend requests and blocks over JSON.

Every rule (who may ask whom, what a block hides, which request is whose) is in the
services (``friends``, ``friend_requests``, ``blocks``); a route calls one, shapes the answer
and, after the commit, tells the open tabs of everyone concerned through the actions layer
(``actions.friends``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from iris_reflex.actions import friends as friend_actions
from iris_reflex.api.accounts import bearer
from iris_reflex.api.deps import DB, CurrentCaller
from iris_reflex.api.openapi import JsonSafeRoute, errors
from iris_reflex.api.schemas import MAX_ID, RequestOutcomeOut, RequestsOut, UsernameIn, UserOut
from iris_reflex.services import blocks, friend_requests, friends

router = APIRouter(tags=["friends"], dependencies=[Depends(bearer)], route_class=JsonSafeRoute)

RequestId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/friends", response_model=list[UserOut], responses=errors(401))
def list_friends(caller: CurrentCaller, session: DB) -> list[UserOut]:
    """The caller's friends, by username."""
    return [UserOut.of(f) for f in friends.list_friends(session, actor_id=caller.id)]


@router.delete(
    "/friends/{username}", status_code=204, response_class=Response, responses=errors(401, 404)
)
def remove_friend(username: str, caller: CurrentCaller, session: DB) -> Response:
    """End a friendship (the conversation closes on both sides; its history stays)."""
    friend_actions.remove_friend(session, actor_id=caller.id, username=username)
    return Response(status_code=204)


@router.get("/friends/requests", response_model=RequestsOut, responses=errors(401))
def list_requests(caller: CurrentCaller, session: DB) -> RequestsOut:
    """Pending requests to (``incoming``) and from (``outgoing``) the caller, newest first."""
    return RequestsOut.of(friend_requests.list_requests(session, actor_id=caller.id))


@router.post(
    "/friends/requests",
    status_code=201,
    response_model=RequestOutcomeOut,
    responses={
        200: {"model": RequestOutcomeOut, "description": "They had asked you: now friends."},
        **errors(400, 401, 403, 404, 409, 422, 429),
    },
)
def send_request(
    body: UsernameIn,
    caller: CurrentCaller,
    session: DB,
    response: Response,
) -> RequestOutcomeOut:
    """Ask someone to be friends (201, ``pending``). If they had already asked you, this
    accepts their request instead (200, ``accepted``)."""
    outcome = friend_actions.send_request(session, actor_id=caller.id, username=body.username)
    if outcome.status == friend_requests.ACCEPTED:
        response.status_code = 200
    return RequestOutcomeOut.of(outcome)


@router.post(
    "/friends/requests/{request_id}/accept",
    response_model=RequestOutcomeOut,
    responses=errors(401, 404, 422),
)
def accept_request(request_id: RequestId, caller: CurrentCaller, session: DB) -> RequestOutcomeOut:
    """Accept a request sent to the caller: the two become friends."""
    outcome = friend_actions.accept_request(session, actor_id=caller.id, request_id=request_id)
    return RequestOutcomeOut.of(outcome)


@router.post(
    "/friends/requests/{request_id}/decline",
    status_code=204,
    response_class=Response,
    responses=errors(401, 404, 422),
)
def decline_request(request_id: RequestId, caller: CurrentCaller, session: DB) -> Response:
    """Decline a request sent to the caller (the requester is not told)."""
    friend_actions.decline_request(session, actor_id=caller.id, request_id=request_id)
    return Response(status_code=204)


@router.delete(
    "/friends/requests/{request_id}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 404, 422),
)
def cancel_request(request_id: RequestId, caller: CurrentCaller, session: DB) -> Response:
    """Withdraw a request the caller sent."""
    friend_actions.cancel_request(session, actor_id=caller.id, request_id=request_id)
    return Response(status_code=204)


@router.get("/blocks", response_model=list[UserOut], responses=errors(401))
def list_blocked(caller: CurrentCaller, session: DB) -> list[UserOut]:
    """The users the caller blocked."""
    return [UserOut.of(u) for u in blocks.list_blocked(session, actor_id=caller.id)]


@router.post(
    "/blocks",
    status_code=204,
    response_class=Response,
    responses=errors(400, 401, 404, 409, 422),
)
def block(body: UsernameIn, caller: CurrentCaller, session: DB) -> Response:
    """Block a user (again is harmless): any friendship or request between you ends, and
    they are not told."""
    friend_actions.block(session, actor_id=caller.id, username=body.username)
    return Response(status_code=204)


@router.delete(
    "/blocks/{username}", status_code=204, response_class=Response, responses=errors(401, 404)
)
def unblock(username: str, caller: CurrentCaller, session: DB) -> Response:
    """Lift a block (again is harmless); the friendship is not restored."""
    friend_actions.unblock(session, actor_id=caller.id, username=username)
    return Response(status_code=204)
