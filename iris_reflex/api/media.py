"""Uploading and fetching files: the only HTTP routes that touch stored media.

Why it is built this way:
- Uploads are streamed to disk (``storage.receive``) with the size limit enforced while the
  bytes arrive, so a 5 GB request costs at most the limit in disk and nothing in memory.
  ``POST /api/uploads`` takes the raw file as the body (the browser sends one request per
  file, which gives a progress bar per file and lets one be cancelled alone).
- Downloads are checked by ``downloads.open_attachment`` (participant, still friends, message
  neither deleted nor expired) and every refusal is the same 404, signed-out requests too.
  The browser authenticates with its ``HttpOnly`` cookie, other clients with the bearer
  header (``deps.caller``): no token ever appears in a URL.
- Responses are hardened for content people upload: ``nosniff``, a sandboxing CSP, no
  caching (an expired file must not live on in a cache), and anything outside the inline
  allowlist (HTML, SVG, XML, scripts, archives...) is sent as a download.
- Range requests (seeking in video and audio) are answered by Starlette's ``FileResponse``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response, UploadFile
from fastapi import Path as FastPath
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel
from sqlmodel import Session

from iris_reflex.actions import accounts as account_actions
from iris_reflex.api.deps import DB, Caller, CurrentCaller, OptionalCaller
from iris_reflex.api.openapi import JsonSafeRoute, errors
from iris_reflex.api.schemas import MAX_ID, AttachmentOut
from iris_reflex.db import session_scope
from iris_reflex.errors import Invalid, NotFound, TooLarge
from iris_reflex.paths import avatar_url
from iris_reflex.services import avatars, downloads, storage, uploads, users
from iris_reflex.services.attachments import AttachmentView
from iris_reflex.services.media_types import NO_SUCH_FILE, ServedFile
from iris_reflex.settings import get_settings

router = APIRouter(tags=["media"], route_class=JsonSafeRoute)
# Ids past the 32-bit columns cannot exist (PostgreSQL would refuse to compare them).
AttachmentId = Annotated[int, FastPath(ge=1, le=MAX_ID)]

NOT_FOUND = errors(404, 422)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
}


def resource_policy(request: Request) -> str:
    """``Cross-Origin-Resource-Policy`` for a stored file: ``same-origin`` when it is served
    from one of this deployment's page origins (``./iris run``, or a proxy in front of
    everything), so a page on another port or subdomain cannot embed it with the victim's
    cookie. Only when the backend has an origin of its own that no page has (``./iris dev``'s
    port 8000, an exported frontend's separate backend) would that hide every picture from
    our own pages: there it is ``same-site``."""
    host = request.headers.get("host", "").lower()
    own = {urlsplit(origin).netloc for origin in get_settings().origins()}
    return "same-origin" if host in own else "same-site"


def _store(actor_id: int, path: Path, name: str) -> AttachmentView:
    with session_scope() as session:
        return uploads.store_upload(session, actor_id=actor_id, source=path, name=name)


@router.post(
    "/uploads", status_code=201, response_model=AttachmentOut, responses=errors(401, 413, 422, 429)
)
async def upload(
    request: Request,
    caller: CurrentCaller,
    name: Annotated[str, Query(min_length=1, max_length=1024)],
) -> AttachmentOut:
    """Upload one file (the raw request body) as a pending attachment of the caller.

    Send its id with a message within 24 hours, or it is deleted.
    """
    limit = storage.limit_bytes()
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise Invalid("Content-Length must be a number.")
        if int(declared) > limit:
            raise TooLarge(storage.too_large_message(limit))
    path, _ = await storage.receive(request.stream(), limit=limit)
    view = await run_in_threadpool(_store, caller.id, path, name)
    return AttachmentOut.of(view)


@router.delete(
    "/uploads/{attachment_id}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 422),
)
def discard_upload(attachment_id: AttachmentId, caller: CurrentCaller, session: DB) -> Response:
    """Cancel a pending upload (its file is deleted). Unknown ids are ignored."""
    uploads.discard_uploads(session, actor_id=caller.id, attachment_ids=[attachment_id])
    return Response(status_code=204)


async def store_form_files(session: Session, caller: Caller, files: list[UploadFile]) -> list[int]:
    """Store multipart files as the caller's pending uploads; returns their ids.

    On any refusal the files stored so far are discarded again, so nothing is left behind.
    """
    most = get_settings().max_files_per_message
    if len(files) > most:
        raise Invalid(f"A message can carry at most {most} files.")
    ids: list[int] = []
    try:
        for part in files:
            path, _ = await run_in_threadpool(
                storage.copy_into_incoming, part.file, limit=storage.limit_bytes()
            )
            view = await run_in_threadpool(_store, caller.id, path, part.filename or "file")
            ids.append(view.id)
    except BaseException:
        uploads.discard_uploads(session, actor_id=caller.id, attachment_ids=ids)
        raise
    return ids


def _serve(request: Request, served: ServedFile) -> FileResponse:
    return FileResponse(
        served.path,
        media_type=served.mime_type,
        filename=served.name,
        content_disposition_type="inline" if served.inline else "attachment",
        headers={**SECURITY_HEADERS, "Cross-Origin-Resource-Policy": resource_policy(request)},
    )


@router.get("/attachments/{attachment_id}", response_class=FileResponse, responses=NOT_FOUND)
def download(
    request: Request, attachment_id: AttachmentId, caller: OptionalCaller, session: DB
) -> FileResponse:
    """The file of an attachment in one of the caller's conversations (Range supported).

    Signed out, a stranger, a guessed id, an expired or deleted message: all the same 404.
    """
    if caller is None:
        raise NotFound(NO_SUCH_FILE)
    return _serve(
        request, downloads.open_attachment(session, actor_id=caller.id, attachment_id=attachment_id)
    )


@router.get(
    "/attachments/{attachment_id}/thumbnail", response_class=FileResponse, responses=NOT_FOUND
)
def thumbnail(
    request: Request, attachment_id: AttachmentId, caller: OptionalCaller, session: DB
) -> FileResponse:
    """An image attachment's small WebP preview (refused like the file itself)."""
    if caller is None:
        raise NotFound(NO_SUCH_FILE)
    return _serve(
        request,
        downloads.open_attachment(
            session, actor_id=caller.id, attachment_id=attachment_id, thumbnail=True
        ),
    )


# --------------------------------------------------------------------------- profile pictures


class AvatarOut(BaseModel):
    """Where the caller's picture is now (the version changes with every new picture)."""

    url: str | None


def _set_avatar(actor_id: int, path: Path) -> tuple[str, str]:
    """The new picture's version, and the username its address is under."""
    with session_scope() as session:
        version = account_actions.set_avatar(session, actor_id=actor_id, source=path)
        return version, users.access_user(session, actor_id).username


@router.put("/me/avatar", response_model=AvatarOut, responses=errors(401, 413, 422, 429))
async def put_avatar(request: Request, caller: CurrentCaller) -> AvatarOut:
    """Upload a new profile picture (the raw image as the body): it is cropped to a centred
    square, re-encoded without metadata, and shown to friends at once."""
    limit = storage.limit_bytes()
    path, _ = await storage.receive(request.stream(), limit=limit)
    version, username = await run_in_threadpool(_set_avatar, caller.id, path)
    return AvatarOut(url=avatar_url(username, version))


@router.delete("/me/avatar", status_code=204, response_class=Response, responses=errors(401))
def delete_avatar(caller: CurrentCaller, session: DB) -> Response:
    """Remove the profile picture (its file is deleted)."""
    account_actions.remove_avatar(session, actor_id=caller.id)
    return Response(status_code=204)


@router.get("/users/{username}/avatar", response_class=FileResponse, responses=NOT_FOUND)
def get_avatar(
    request: Request, username: str, caller: OptionalCaller, session: DB
) -> FileResponse:
    """A profile picture, for the user and their friends only; anyone else gets 404."""
    if caller is None:
        raise NotFound(NO_SUCH_FILE)
    served = avatars.open_avatar(session, actor_id=caller.id, username=username)
    response = _serve(request, served)
    # Revalidated on every use (cheap 304s), so a removed friend stops seeing it.
    response.headers["Cache-Control"] = "private, no-cache"
    return response
