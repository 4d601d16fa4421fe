"""Conversations over JSON: the list, history pages, sending, reading, timers, deleting.

``services.conversations`` decides everything (only friends talk, what is visible, who may
delete); routes translate and act through ``actions.messages``, which announces each change
after its commit, so a message sent here appears live in both people's browsers like one
typed there.

Sending takes JSON, or ``multipart/form-data`` when files come along (a form without files,
urlencoded as ``curl -d`` sends it, works too). One route serves both
(the client's ``Content-Type`` decides), so it reads the body itself; its OpenAPI request body
is written out in ``openapi.send_message_openapi``.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlmodel import Session
from starlette.datastructures import UploadFile

from iris_reflex.actions import messages as message_actions
from iris_reflex.api import media as media_api
from iris_reflex.api.accounts import bearer
from iris_reflex.api.deps import DB, Caller, CurrentCaller
from iris_reflex.api.openapi import JsonSafeRoute, errors, send_message_openapi
from iris_reflex.api.schemas import (
    MAX_ID,
    ConversationOut,
    MessageOut,
    ReadIn,
    ReadOut,
    SendMessageForm,
    SendMessageIn,
    TimerIn,
)
from iris_reflex.errors import DomainError
from iris_reflex.services import conversations, uploads
from iris_reflex.services.sending import Sent
from iris_reflex.settings import get_settings

router = APIRouter(
    tags=["conversations"], dependencies=[Depends(bearer)], route_class=JsonSafeRoute
)

MessageId = Annotated[int, Path(ge=1, le=MAX_ID)]
UNSUPPORTED_BODY = "Send JSON, or a form: multipart/form-data (with files) or urlencoded."


@router.get("/conversations", response_model=list[ConversationOut], responses=errors(401))
def list_conversations(caller: CurrentCaller, session: DB) -> list[ConversationOut]:
    """The caller's conversations with friends, newest activity first, with unread counts."""
    summaries = conversations.list_conversations(session, actor_id=caller.id)
    return [ConversationOut.of(s) for s in summaries]


@router.get(
    "/conversations/{username}/messages",
    response_model=list[MessageOut],
    responses=errors(401, 404, 422),
)
def list_messages(
    username: str,
    caller: CurrentCaller,
    session: DB,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Only messages older than this id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=conversations.PAGE_MAX)] = conversations.PAGE_DEFAULT,
) -> list[MessageOut]:
    """A page of the conversation with a friend, newest first. For the next (older) page,
    pass the last id received as ``before``."""
    page = conversations.list_messages(
        session, actor_id=caller.id, username=username, before_id=before, limit=limit
    )
    return [MessageOut.of(m) for m in page]


def _validated(model: type[BaseModel], data: Any) -> Any:
    """``data`` as ``model``, or FastAPI's own 422 (the same shape as any other route's)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None


async def _send_json(session: Session, caller: Caller, username: str, raw: bytes) -> Sent:
    try:
        data = json.loads(raw)
    except ValueError:
        raise RequestValidationError(
            [{"loc": ["body"], "msg": "The body is not valid JSON.", "type": "json_invalid"}]
        ) from None
    body: SendMessageIn = _validated(SendMessageIn, data)
    return await run_in_threadpool(
        partial(
            message_actions.send_message,
            session,
            actor_id=caller.id,
            username=username,
            body=body.body,
            timer_seconds=body.expires_in_seconds,
            timer_mode=body.timer_mode.value if body.timer_mode else None,
            attachment_ids=body.attachment_ids,
        )
    )


async def _send_form(session: Session, caller: Caller, username: str, request: Request) -> Sent:
    # Starlette's own bound on parts; the service still checks the number of files.
    most = get_settings().max_files_per_message
    async with request.form(max_files=most, max_fields=16) as form:
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        # Empty form fields mean "not given", as a browser sends them.
        fields = {k: v for k, v in form.items() if k != "files" and isinstance(v, str) and v}
        body: SendMessageForm = _validated(SendMessageForm, fields)
        ids = await media_api.store_form_files(session, caller, files) if files else []  # type: ignore[arg-type]
    try:
        return await run_in_threadpool(
            partial(
                message_actions.send_message,
                session,
                actor_id=caller.id,
                username=username,
                body=body.body,
                timer_seconds=body.expires_in_seconds,
                timer_mode=body.timer_mode.value if body.timer_mode else None,
                attachment_ids=ids,
            )
        )
    except DomainError:
        # The files came with this request only: a refused message must not leave them.
        if ids:
            await run_in_threadpool(
                partial(uploads.discard_uploads, session, actor_id=caller.id, attachment_ids=ids)
            )
        raise


@router.post(
    "/conversations/{username}/messages",
    status_code=201,
    response_model=MessageOut,
    responses=errors(400, 401, 403, 404, 413, 415, 422, 429),
    openapi_extra=send_message_openapi(),
)
async def send_message(
    username: str, request: Request, caller: CurrentCaller, session: DB
) -> MessageOut:
    """Send a message to a friend: JSON, or ``multipart/form-data`` with one or more
    ``files`` (with files the text may be empty)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        sent = await _send_form(session, caller, username, request)
    elif content_type == "application/json" or content_type.endswith("+json"):
        sent = await _send_json(session, caller, username, await request.body())
    else:
        raise HTTPException(415, UNSUPPORTED_BODY)
    return MessageOut.of(sent.message)


@router.post(
    "/conversations/{username}/read",
    response_model=ReadOut,
    responses=errors(400, 401, 404, 422),
)
def mark_read(
    username: str,
    body: ReadIn,
    caller: CurrentCaller,
    session: DB,
) -> ReadOut:
    """Mark the friend's messages to the caller read, up to ``up_to_message_id``. With shared
    receipts the friend sees them read; after-read timers start now."""
    receipt = message_actions.mark_read(
        session, actor_id=caller.id, username=username, up_to_id=body.up_to_message_id
    )
    return ReadOut(message_ids=receipt.message_ids if receipt else [])


@router.put(
    "/conversations/{username}/timer",
    response_model=MessageOut,
    responses=errors(400, 401, 404, 422),
)
def set_timer(
    username: str,
    body: TimerIn,
    caller: CurrentCaller,
    session: DB,
) -> MessageOut:
    """Set the conversation's default timer for later messages (null or 0 turns it off).
    Returns the notice written into the conversation for both people."""
    sent = message_actions.set_conversation_timer(
        session,
        actor_id=caller.id,
        username=username,
        seconds=body.seconds,
        mode=body.mode.value,
    )
    return MessageOut.of(sent.message)


@router.delete(
    "/messages/{message_id}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 404, 422),
)
def delete_message(message_id: MessageId, caller: CurrentCaller, session: DB) -> Response:
    """Delete the caller's own message for everyone (404 for anyone else's)."""
    message_actions.delete_for_everyone(session, actor_id=caller.id, message_id=message_id)
    return Response(status_code=204)
